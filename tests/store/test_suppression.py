"""The suppression list's storage: imports order by time with STOP/START callbacks, are idempotent, and check sees them."""

from __future__ import annotations

import time

import pytest
import redis

from pipeline.record import Record, encode_batch
from store import keys
from store.state import Store
from store.suppression import ImportRow, check, export, import_rows
from tests.workers.conftest import body
from workers.tasks import process_batch

PHONE = "11234567890"  # the WhatsApp STOP fixture's number


@pytest.fixture
def store(redis_url):
    client = redis.Redis.from_url(redis_url)
    yield Store(client)
    client.close()


def callback(store: Store, name: str, when: str) -> None:
    process_batch(encode_batch([Record(body(name, status_updated_on=when), time.time())]), store)


def row(action: str, ts: float, address: str = PHONE) -> ImportRow:
    return ImportRow(address=address, action=action, channel="sms", keyword=action, ts=ts)


T0 = 1704067200.0  # 2024-01-01T00:00:00Z


def test_imports_and_callbacks_order_by_time(store):
    callback(store, "mo_whatsapp_keyword_stop", "2024-01-01T00:00:10Z")
    older = import_rows(store.client, [row("start", T0 + 5)])
    assert (older.written, older.changed) == (0, 0) and store.optout(PHONE).opted_out
    newer = import_rows(store.client, [row("start", T0 + 20)])
    assert (newer.written, newer.opted_in) == (1, 1) and not store.optout(PHONE).opted_out
    assert store.client.zscore(keys.OPTOUT_INDEX, PHONE) is None
    callback(store, "mo_whatsapp_keyword_stop", "2024-01-01T00:00:15Z")  # a late, older STOP changes nothing
    assert not store.optout(PHONE).opted_out
    assert store.optout(PHONE).updated_at == "2024-01-01T00:00:20.000000Z"


def test_import_is_idempotent_and_orders_its_own_rows(store):
    rows = [row("stop", T0 + 3, "15550000001"), row("start", T0 + 1, "15550000001"), row("stop", T0 + 2, "15550000002")]
    first = import_rows(store.client, rows)
    assert (first.rows, first.written, first.opted_out, first.opted_in) == (3, 3, 2, 0)
    again = import_rows(store.client, list(reversed(rows)))
    assert (again.written, again.changed) == (0, 0)
    found = check(store.client, ["15550000002", "15550000003", "15550000001"])
    assert [s.address for s in found] == ["15550000002", "15550000001"]  # in the order asked
    assert all(s.recorded_at.endswith("Z") and s.recorded_at >= "2026" for s in found)  # when imported, not 2024
    assert {(e.address, e.updated_at) for e in export(store.client, page=1)} == {
        ("15550000002", "2024-01-01T00:00:02.000000Z"), ("15550000001", "2024-01-01T00:00:03.000000Z")}
    changes = store.client.hget(keys.METRICS, 'tspipe_optout_changes_total{action="stop"}')
    assert int(changes) == 2
