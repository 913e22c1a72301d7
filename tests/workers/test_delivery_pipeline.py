"""The whole worker path: a callback batch -> decode -> store -> fan_out -> the engine -> a signed POST, exactly once.

Runs once the batch task (workers branch) and pipeline.decode are merged; skipped before.
"""

from __future__ import annotations

import time

import pytest

import pipeline
from pipeline.record import Record, encode_batch
from tests.conftest import fixture_bodies
from tests.workers.delivery_support import HttpServer, delivery_engine, destinations_env, wait_for
from tests.workers.test_delivery import dest, ok, verify

tasks = pytest.importorskip("workers.tasks", reason="the batch task lands from the workers branch")
pytestmark = pytest.mark.skipif(not hasattr(pipeline, "decode"), reason="pipeline.decode lands from the core branch")


def test_batch_redelivered_twice_posts_each_event_once(monkeypatch, redis_url) -> None:
    bodies = fixture_bodies()
    blob = encode_batch([Record(body=body, received_at=time.time()) for body in bodies.values()])
    with HttpServer(ok) as server:
        destinations_env(monkeypatch, redis_url, [dest("a", server)])
        tasks.reset_store()
        with delivery_engine():
            applied = tasks.process_batch(blob)
            tasks.process_batch(blob)  # a redelivered batch: dedup means no second POST
            assert wait_for(lambda: len(server.calls) >= len(applied))
            time.sleep(0.3)
    assert len(server.calls) == len(applied) > 0
    assert len({h["webhook-id"] for h, _, _ in server.calls}) == len(applied)
    assert all(verify(h, b) for h, b, _ in server.calls)
