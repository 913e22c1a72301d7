"""Issue 11, item 1: a corrupt spool segment costs only the frame that is damaged, and even that is kept.

Reproduced as reported: Redis stopped, 600 callbacks answered 200 (all spooled), `kill -9` of the web
process, one byte at offset 1000 of the segment overwritten, then Redis and the web process restarted.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp

from ingest.spool import DAMAGED_DIR, scan
from pipeline.record import decode_batch
from tests.faults.support import unique_callbacks
from tests.faults.test_web_process import web_process
from tests.ingest.conftest import signed
from tests.ingest.queue import queued_bodies
from tests.conftest import wait_healthy
from tspipe.redis_server import RedisServer


async def _post_all(base: str, callbacks: list[tuple[str, bytes]]) -> dict[bytes, int]:
    answers: dict[bytes, int] = {}
    pending = iter(callbacks)

    async def sender(session: aiohttp.ClientSession) -> None:
        for channel, body in pending:
            async with session.post(f"{base}/callbacks/{channel}", data=body, headers=signed(body)) as response:
                await response.read()
                answers[body] = response.status

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as session:
        await asyncio.gather(*(sender(session) for _ in range(16)))
    return answers


async def _wait_ready(base: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            async with session.get(base + "/readyz") as response:
                if response.status == 200:
                    return
            await asyncio.sleep(0.1)
    raise AssertionError("the ingress did not leave its outage")


async def test_corrupt_spool_segment_loses_no_intact_frame_and_keeps_the_damaged_one(
    own_redis: RedisServer, tmp_path: Path
) -> None:
    own_redis.stop()
    with web_process(own_redis.url, tmp_path) as (proc, base, _port):
        await wait_healthy(base, proc)
        answers = await _post_all(base, unique_callbacks(600))
        proc.kill()
        proc.wait()
    assert list(answers.values()) == [200] * 600
    segments = sorted((tmp_path / "spool").glob("spool-*.log"))
    assert len(segments) == 1
    data = bytearray(segments[0].read_bytes())
    # Which frame holds offset 1000, and which callbacks it carries (read before the damage).
    frames = [item for item in scan(bytes(data))]
    start, payload = next((o, p) for o, p in frames if o <= 1000 < o + 12 + len(p))
    in_damaged_frame = {record.body for record in decode_batch(payload[37:])}
    data[1000] ^= 0xFF
    segments[0].write_bytes(bytes(data))

    own_redis.start()
    with web_process(own_redis.url, tmp_path) as (proc, base, _port):
        await wait_healthy(base, proc)
        await _wait_ready(base)
        async with aiohttp.ClientSession() as session:
            async with session.get(base + "/metrics") as response:
                metrics = await response.text()
    log = (tmp_path / "web.log").read_text()

    queued = queued_bodies(own_redis.url)
    lost = set(answers) - set(queued)
    print(f"\n[fault spool-damage] acked={len(answers)} queued={len(queued)} lost={len(lost)} "
          f"in_damaged_frame={len(in_damaged_frame)} frames={len(frames)}")
    assert lost == in_damaged_frame  # only the damaged frame's callbacks are missing from Redis...
    assert len(queued) == len(set(queued))
    aside = list((tmp_path / "spool" / DAMAGED_DIR).iterdir())
    assert [p.name for p in aside] == [f"{segments[0].stem}.at-{start}.corrupt"]
    assert aside[0].read_bytes() == bytes(data[start:start + 12 + len(payload)])  # ...and they are kept aside
    assert not segments[0].exists()
    assert 'tspipe_ingest_spool_damaged_total{reason="corrupt"} 1.0' in metrics
    assert '"level": "error"' in log and "damaged spool bytes set aside" in log
