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
import psutil

from tests.ingest.conftest import API_KEY, CUSTOMER_ID, signed
from tests.ingest.queue import queued_bodies
from tspipe.redis_server import free_port
from tests.conftest import wait_healthy

TSPIPE = str(Path(sys.executable).with_name("tspipe"))


async def _wait_connected(proc: subprocess.Popen[bytes], count: int) -> None:
    """Until `count` client connections are established with the web process (or 10 s)."""
    process = psutil.Process(proc.pid)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if sum(c.status == psutil.CONN_ESTABLISHED for c in process.net_connections("tcp")) >= count:
            return
        await asyncio.sleep(0.02)


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
        # A long batch window and a large target, so requests are surely waiting when SIGTERM lands.
        "TSPIPE_BATCH_MAX_WAIT_MS": "5000",
        "TSPIPE_BATCH_TARGET_RECORDS": "1000",
        "TSPIPE_LOG_FORMAT": "json",
    }
    log = (tmp_path / "web.log").open("wb")
    proc = subprocess.Popen([TSPIPE, "web"], env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_healthy(base, proc)
        bodies = [b'{"n": %d}' % i for i in range(100)]

        async def post(session: aiohttp.ClientSession, body: bytes) -> tuple[bytes, int | None]:
            try:
                async with session.post(base + "/callbacks", data=body, headers=signed(body)) as response:
                    await response.read()
                    return body, response.status
            except aiohttp.ClientError:
                return body, None

        async with aiohttp.ClientSession() as session:
            # One write first: the batch window runs from it, so the 100 below wait for the window.
            assert (await post(session, b'{"n": -1}'))[1] == 200
            tasks = [asyncio.create_task(post(session, b)) for b in bodies]
            await _wait_connected(proc, len(bodies))  # the requests are in (on a loaded machine: not after 0.1 s)
            await asyncio.sleep(0.2)
            proc.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            results = await asyncio.gather(*tasks)
            answered_after = time.monotonic() - signalled
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    acknowledged = [body for body, status in results if status == 200]
    assert len(acknowledged) > 50  # most were in flight and must have been flushed, not dropped
    # Written when SIGTERM came, not when the 5 s batch window would have ended.
    assert answered_after < 2.5, answered_after
    queued = queued_bodies(redis_url)
    for body in acknowledged:
        assert body in queued
