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


def test_late_older_event_is_delivered_with_current_false(monkeypatch, redis_url) -> None:
    """Issue 11 item 13: "delivered" arriving after "read" is still sent, marked as not the message's state."""
    read = fixture_bodies()["read_notification"]
    reference = pipeline.decode(read, channel_hint="whatsapp").reference_id
    delivered = (b'{"reference_id": "%s", "status": {"code": 3000, "description": "Delivered", '
                 b'"last_channel": "whatsapp", "updated_on": "2020-01-01T00:00:00Z"}}' % reference.encode())
    with HttpServer(ok) as server:
        destinations_env(monkeypatch, redis_url, [dest("a", server)])
        tasks.reset_store()
        with delivery_engine():
            tasks.process_batch(encode_batch([Record(body=read, received_at=time.time(), channel_hint="whatsapp")]))
            tasks.process_batch(encode_batch([Record(body=delivered, received_at=time.time())]))
            assert wait_for(lambda: len(server.calls) >= 2)
    sent = {b["status"]["code"]: b["current"] for b in server.bodies()}
    assert sent == {3005: True, 3000: False}
    assert tasks.get_store().state(reference).status.code == 3005
