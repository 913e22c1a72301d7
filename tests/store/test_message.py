"""A message's compact record: what it holds, what it never holds, how long it lives, and how it reads back."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import msgspec
import pytest
import redis

from pipeline.event import Action, Channel, Kind, Outcome
from pipeline.status_codes import lookup
from store import keys, message
from store.state import PENDING_WINDOW_SECONDS, Store
from tests.store.test_state import ev


@pytest.fixture
def store(redis_url):
    client = redis.Redis.from_url(redis_url)
    yield Store(client, state_ttl=3600, dedup_ttl=600)
    client.close()


def described(event):
    """The event with the status table's description, as decode gives it for a usual callback."""
    text = lookup(event.status.code, event.channel.value).description
    return msgspec.structs.replace(event, status=msgspec.structs.replace(event.status, description=text))


def test_transaction_reads_back_in_the_contract_shape(store):
    store.apply_batch([described(ev("s", 3002, "pending", False, 1, channel=Channel.WHATSAPP)),
                       described(ev("d", 3000, "delivered", False, 2, channel=Channel.WHATSAPP))])
    found = msgspec.to_builtins(store.transaction("REF1"))
    assert found == {
        "reference_id": "REF1",
        "state": {
            "kind": "delivery", "channel": "whatsapp", "occurred_at": "2024-01-01T00:00:02Z",
            # A status described as the table describes it costs nothing to keep: the table gives it back.
            "status": {"code": 3000, "description": lookup(3000).description, "outcome": "delivered",
                       "final": False, "retryable": False},
        },
        "history": [
            {"code": 3002, "outcome": "pending", "occurred_at": "2024-01-01T00:00:01Z"},
            {"code": 3000, "outcome": "delivered", "occurred_at": "2024-01-01T00:00:02Z"},
        ],
    }


def test_description_as_sent_is_kept_when_it_differs_from_the_table(store):
    event = ev("x", 3000, "delivered", True, 1)
    event = msgspec.structs.replace(event, status=msgspec.structs.replace(event.status, description="Delivered (carrier)"))
    store.apply_batch([event, ev("y", 3000, "delivered", True, 0, ref="NONE")])
    assert store.state("REF1").status.description == "Delivered (carrier)"
    assert store.state("NONE").status.description is None  # none sent, none invented


def test_microseconds_survive_the_round_trip(store):
    when = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=timezone.utc)
    event = msgspec.structs.replace(ev("u", 3000, "delivered", True, 0), occurred_at=when)
    store.apply_batch([event])
    assert store.state("REF1").occurred_at == when
    assert store.history("REF1")[0].occurred_at == when


def test_late_older_event_is_applied_but_not_current(store):
    read = ev("r", 3005, "read", True, 20, channel=Channel.WHATSAPP, kind=Kind.READ)
    delivered = ev("d", 3000, "delivered", False, 10, channel=Channel.WHATSAPP)
    assert store.apply_batch_with_outbox([read]).current == {"r"}
    result = store.apply_batch_with_outbox([delivered])
    assert result.new == [delivered] and result.current == set()
    assert store.state("REF1").status.code == 3005
    assert [h.code for h in store.history("REF1")] == [3005, 3000]


def test_record_holds_no_address_and_lives_state_ttl(store):
    store.apply_batch([ev("s", 1500, "received", True, 1, kind=Kind.INBOUND, action=Action.STOP, keyword="STOP")])
    raw = store.client.get(keys.MESSAGE.format(reference_id="REF1"))
    assert b"15551234567" not in raw
    assert 3590 <= store.client.ttl(keys.MESSAGE.format(reference_id="REF1")) <= 3600
    # Nor do the dashboard's recent events carry it.
    assert all(b"15551234567" not in r for r in store.client.lrange(keys.RECENT_EVENTS, 0, -1))


def test_sent_and_delivered_record_is_under_a_hundred_bytes(store):
    store.apply_batch([ev("aa11", 3002, "pending", False, 1), ev("bb22", 3000, "delivered", True, 2)])
    assert len(store.client.get(keys.MESSAGE.format(reference_id="REF1"))) < 100


def test_event_without_reference_id_dedupes_on_its_own_key_with_a_ttl(store):
    loose = ev("n1", 1500, "received", True, 1, ref=None, kind=Kind.INBOUND)
    assert [len(store.apply_batch([loose])) for _ in range(3)] == [1, 0, 0]
    assert 590 <= store.client.ttl(keys.DEDUP.format(event_id="n1")) <= 600
    assert store.seen([loose]) == [True]


def test_outbox_key_lives_dedup_ttl_until_confirmed(store):
    event = ev("o", 3000, Outcome.DELIVERED, True, 1)
    store.apply_batch_with_outbox([event])
    assert 590 <= store.client.ttl(keys.OUTBOX.format(event_id="o")) <= 600
    store.confirm_fanout([event])
    assert not store.client.exists(keys.OUTBOX.format(event_id="o"))


def test_pending_entries_leave_once_the_status_window_has_passed(store):
    """Every batch drops index entries older than the window: 1,000 stale ones go, a fresh one stays."""
    stale = time.time() - PENDING_WINDOW_SECONDS - 60
    store.client.zadd(keys.PENDING_INDEX, {f"old{i}": stale for i in range(1000)})
    store.apply_batch([ev("p", 3002, "pending", False, 1, ref="NEW")])
    assert store.client.zrange(keys.PENDING_INDEX, 0, -1) == [b"NEW"]


def test_pending_window_is_capped_by_the_state_ttl(redis_url):
    """A state that expires sooner than 12 h takes its index entry with it."""
    client = redis.Redis.from_url(redis_url)
    short = Store(client, state_ttl=120)
    client.zadd(keys.PENDING_INDEX, {"expired": time.time() - 121})
    short.apply_batch([ev("p", 3002, "pending", False, 1, ref="NEW")])
    assert client.zrange(keys.PENDING_INDEX, 0, -1) == [b"NEW"]
    client.close()


def test_enum_tables_cover_every_member():
    assert set(message.KINDS) == set(Kind) and set(message.CHANNELS) == set(Channel)
    assert set(message.OUTCOMES) == set(Outcome)


def test_fingerprints_of_real_ids_are_lua_exact():
    fp = message.fingerprint("ffffffffffffffffffffffffffffffff")
    assert fp < 2**53 and fp == 2**48 - 1
    assert message.fingerprint("evt_1") != message.fingerprint("evt_2")
