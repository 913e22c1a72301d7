"""Issue 7a: Redis killed under steady load. The contract is "200 only once durably stored", so
every 200 must be in the queue after Redis comes back (lost = 0); with a tiny spool the ingress
must answer 503 rather than acknowledge a body it cannot keep."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from ingest.app import PUBLISHER_KEY, create_app
from tests.faults.support import unique_callbacks
from tests.ingest.conftest import make_settings, signed
from tests.ingest.queue import queued_bodies
from tests.ingest.test_outage import _durable
from tspipe.redis_server import RedisServer

CONCURRENCY = 8


async def _drive(client, callbacks, stop_at: float) -> dict[bytes, int]:
    """A bounded client: CONCURRENCY senders POST until the callbacks run out or time is up."""
    answers: dict[bytes, int] = {}
    it = iter(callbacks)

    async def sender() -> None:
        for channel, body in it:
            if time.monotonic() > stop_at:
                return
            async with client.post(f"/callbacks/{channel}", data=body, headers=signed(body)) as r:
                answers[body] = r.status
            await asyncio.sleep(0.002)

    await asyncio.gather(*(sender() for _ in range(CONCURRENCY)))
    return answers


async def _through_outage(app, client, own_redis: RedisServer, count: int, load_s: float,
                          kill_after_s: float, down_s: float) -> tuple[dict[bytes, int], list[bytes]]:
    """Drive signed load, kill Redis part-way, restart it, wait for the spool to drain.

    Returns each body's HTTP answer and the bodies found in the queue afterwards.
    """
    callbacks = unique_callbacks(count)
    load = asyncio.ensure_future(_drive(client, callbacks, time.monotonic() + load_s))
    await asyncio.sleep(kill_after_s)
    own_redis.kill()
    await asyncio.sleep(down_s)
    own_redis.start()
    answers = await load
    publisher = app[PUBLISHER_KEY]
    deadline = time.monotonic() + 10
    while (publisher.outage or not publisher.spool.empty) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return answers, queued_bodies(own_redis.url)


async def test_redis_killed_under_load_loses_nothing(aiohttp_client, own_redis: RedisServer, tmp_path: Path) -> None:
    _durable(own_redis)
    app = create_app(make_settings(own_redis.url, tmp_path))
    client = await aiohttp_client(app)
    answers, queued = await _through_outage(app, client, own_redis, 20000, load_s=5.0, kill_after_s=1.0, down_s=2.5)
    acked = {b for b, s in answers.items() if s == 200}
    lost = len(acked - set(queued))
    duplicated = len(queued) - len(set(queued))
    statuses = sorted(set(answers.values()))
    print(f"\n[fault redis-kill] sent={len(answers)} acked={len(acked)} queued={len(queued)} "
          f"lost={lost} duplicated={duplicated} statuses={statuses}")
    assert len(acked) > 100
    assert lost == 0 and duplicated == 0
    assert statuses == [200]


async def test_redis_down_tiny_spool_answers_503_never_a_lost_200(
    aiohttp_client, own_redis: RedisServer, tmp_path: Path
) -> None:
    _durable(own_redis)
    app = create_app(make_settings(own_redis.url, tmp_path, spool_max_bytes=4096))
    client = await aiohttp_client(app)
    answers, queued_list = await _through_outage(app, client, own_redis, 3000, load_s=4.0, kill_after_s=0.7, down_s=2.0)
    queued = set(queued_list)
    acked = {b for b, s in answers.items() if s == 200}
    refused = sum(1 for s in answers.values() if s == 503)
    lost = len(acked - queued)
    print(f"\n[fault redis-kill tiny-spool] sent={len(answers)} acked={len(acked)} refused_503={refused} lost={lost}")
    assert refused > 0, "a 4 KiB spool must fill during a 2 s outage"
    assert set(answers.values()) <= {200, 503}
    assert lost == 0
