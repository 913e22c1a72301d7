"""Issue 7c: a destination failing 50% of the time (seeded). No event may vanish: each one is either
delivered (a 2xx for its webhook-id) or sits in the DLQ, and replaying the DLQ once the destination
recovers empties it and delivers the rest, still one webhook-id per event."""

from __future__ import annotations

import random
import time

import redis
from aiohttp import web

from pipeline.record import Record, encode_batch
from tests.faults.support import unique_callbacks
from tests.workers.delivery_support import HttpServer, delivery_engine, destinations_env, verify_all, wait_for
from tests.workers.test_delivery import SECRET, dest
from store import deadletters
from workers.replay import replay
from workers import tasks

EVENTS = 60


def test_flaky_destination_everything_delivered_or_dead_lettered_then_replayed(monkeypatch, redis_url) -> None:
    rng = random.Random(1234)
    state = {"fail_rate": 0.5}
    delivered: set[str] = set()

    async def flaky(request: web.Request) -> web.Response:
        if rng.random() < state["fail_rate"]:
            return web.Response(status=500)
        delivered.add(request.headers["webhook-id"])
        return web.Response(status=204)

    client = redis.Redis.from_url(redis_url)
    with HttpServer(flaky) as server:
        destinations_env(monkeypatch, redis_url,
                         [dest("flaky", server, max_attempts=2, circuit_threshold=1000)])
        tasks.reset_store()
        with delivery_engine():
            blob = encode_batch([Record(b, time.time(), ch, f"r{i}")
                                 for i, (ch, b) in enumerate(unique_callbacks(EVENTS))])
            applied = tasks.process_batch(blob)
            settled = lambda: len(delivered) + len(deadletters.list_entries(client)) >= len(applied)  # noqa: E731
            assert wait_for(settled, timeout=30)
            time.sleep(0.3)
            dlq_before = len(deadletters.list_entries(client))
            delivered_before = len(delivered)
            attempts = len(server.calls)
            state["fail_rate"] = 0.0
            replayed = replay(client, deadletters.list_entries(client))
            assert wait_for(lambda: len(delivered) >= len(applied), timeout=30)
            time.sleep(0.3)
        dlq_after = len(deadletters.list_entries(client))
    successes = [h["webhook-id"] for h, _b, _t in server.calls if h["webhook-id"] in delivered]
    print(f"\n[fault downstream-50%] events={len(applied)} attempts={attempts} delivered={delivered_before} "
          f"dead_lettered={dlq_before} lost={len(applied) - delivered_before - dlq_before} replayed={replayed} "
          f"dlq_after={dlq_after} delivered_final={len(delivered)} distinct_webhook_ids={len(set(successes))}")
    assert len(applied) == EVENTS
    assert delivered_before + dlq_before == len(applied)  # nothing vanished
    assert dlq_before > 0  # with 2 attempts at 50%, some must have been dead-lettered
    assert replayed == dlq_before and dlq_after == 0
    assert len(delivered) == len(applied)
    verify_all(SECRET, server.calls)
    client.close()
