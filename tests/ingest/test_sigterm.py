"""SIGTERM with requests in flight: `tspipe web` stops, and every 200 it gave was written."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from tests.ingest.conftest import API_KEY, CUSTOMER_ID, signed
from tests.ingest.queue import queued_bodies
from tspipe.redis_server import free_port

TSPIPE = str(Path(sys.executable).with_name("tspipe"))


async def _wait_healthy(base: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 15
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            assert proc.poll() is None, "tspipe web exited early"
            try:
                async with session.get(base + "/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise AssertionError("tspipe web did not become healthy")


async def test_sigterm_flushes_in_flight(redis_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "PORT": str(port),
        "TSPIPE_HOST": "127.0.0.1",
        "TSPIPE_SPOOL_DIR": str(tmp_path / "spool"),
        "TELESIGN_API_KEY": API_KEY,
        "TELESIGN_CUSTOMER_ID": CUSTOMER_ID,
        # A long batch window so requests are surely waiting when SIGTERM lands.
        "TSPIPE_BATCH_MAX_WAIT_MS": "300",
        "TSPIPE_LOG_FORMAT": "json",
    }
    log = (tmp_path / "web.log").open("wb")
    proc = subprocess.Popen([TSPIPE, "web"], env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        await _wait_healthy(base, proc)
        bodies = [b'{"n": %d}' % i for i in range(100)]

        async def post(session: aiohttp.ClientSession, body: bytes) -> tuple[bytes, int | None]:
            try:
                async with session.post(base + "/callbacks", data=body, headers=signed(body)) as response:
                    await response.read()
                    return body, response.status
            except aiohttp.ClientError:
                return body, None

        async with aiohttp.ClientSession() as session:
            tasks = [asyncio.create_task(post(session, b)) for b in bodies]
            await asyncio.sleep(0.1)  # the requests are in, waiting for their batch
            proc.send_signal(signal.SIGTERM)
            results = await asyncio.gather(*tasks)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    acknowledged = [body for body, status in results if status == 200]
    assert len(acknowledged) > 50  # most were in flight and must have been flushed, not dropped
    queued = queued_bodies(redis_url)
    for body in acknowledged:
        assert body in queued
