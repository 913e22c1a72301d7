"""The batch task in process: every fixture reaches the store, bad bodies are quarantined, dups are free."""

from __future__ import annotations

import time

import pytest
import redis

from pipeline.record import Record, encode_batch
from tests.conftest import fixture_bodies
from tests.workers.conftest import body
from store import keys
from store.state import Store
from workers.tasks import process_batch


@pytest.fixture
def store(redis_url):
    client = redis.Redis.from_url(redis_url)
    yield Store(client)
    client.close()


def blob(*bodies: bytes, hint: str | None = None) -> bytes:
    return encode_batch([Record(b, time.time(), hint, f"req{i}") for i, b in enumerate(bodies)])


def test_every_fixture_reaches_the_store(store):
    bodies = fixture_bodies()
    applied = process_batch(blob(*bodies.values(), hint=None), store)
    assert len(applied) == len(bodies)
    for event in applied:
        if event.reference_id:
            assert store.history(event.reference_id)
    assert store.client.llen(keys.RECENT_EVENTS) == len(bodies)


def test_same_body_five_times_one_change(store):
    stop = fixture_bodies()["mo_whatsapp_keyword_stop"]
    results = [process_batch(blob(stop), store) for _ in range(5)]
    assert [len(r) for r in results] == [1, 0, 0, 0, 0]
    assert store.optout("11234567890").opted_out
    assert int(store.client.hget(keys.METRICS, 'tspipe_optout_changes_total{action="stop"}')) == 1
    assert len(store.history("0123456789ABCDEF0123456789ABCDEF")) == 1


def test_out_of_order_sms_final_then_older_pending(store):
    delivered = body("delivery_rcs_fallback_to_sms", status_updated_on="2024-01-01T00:00:10Z")
    pending = body("delivery_rcs_fallback_to_sms", status_code=3002, status_updated_on="2024-01-01T00:00:05Z")
    process_batch(blob(delivered), store)
    process_batch(blob(pending), store)
    assert store.state("35C8B5D509BC10689196FED2AD551B8A").status.code == 3000


def test_whatsapp_delivered_then_read(store):
    delivered = body("delivery_rcs_fallback_to_sms", status_last_channel="whatsapp",
                     status_updated_on="2024-01-01T00:00:10Z")
    read = body("read_notification", status_updated_on="2024-01-01T00:00:20Z")
    process_batch(blob(delivered), store)
    assert store.client.zscore(keys.PENDING_INDEX, "35C8B5D509BC10689196FED2AD551B8A") is not None
    process_batch(blob(read), store)
    assert store.state("35C8B5D509BC10689196FED2AD551B8A").status.code == 3005
    assert store.client.zscore(keys.PENDING_INDEX, "35C8B5D509BC10689196FED2AD551B8A") is None


def test_malformed_body_is_quarantined_and_the_rest_applied(store):
    good = fixture_bodies()["read_notification"]
    applied = process_batch(blob(good, b"{not json", b"\xff\xfe"), store)
    assert len(applied) == 1
    bad = store.quarantined()
    assert len(bad) == 2
    assert {e.body for e in bad} == {None, "{not json"}
    assert all(e.reason and e.received_at > 0 for e in bad)
    assert int(store.client.hget(keys.METRICS, "tspipe_quarantined_total")) == 2
