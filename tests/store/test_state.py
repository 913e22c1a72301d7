"""The store against a real Redis: dedup, monotonic state, opt-outs, metrics, quarantine."""

from __future__ import annotations

import random
import time
from datetime import datetime, timedelta, timezone

import pytest
import redis

from pipeline.event import Action, Channel, Event, Kind, Outcome, Status
from store import keys
from store.quarantine import QuarantineEntry
from store.state import Store

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)


def ev(event_id, code, outcome, final, seconds, *, ref="REF1", kind=Kind.DELIVERY, channel=Channel.SMS,
       action=None, phone="15551234567", email=None, keyword=None):
    return Event(
        event_id=event_id, kind=kind, channel=channel, reference_id=ref, external_id=None,
        status=Status(code=code, outcome=Outcome(outcome), final=final),
        occurred_at=T0 + timedelta(seconds=seconds), received_at=datetime.now(timezone.utc),
        phone_number=phone, email=email, sender=None, text=None, action=action, keyword=keyword,
    )


@pytest.fixture
def store(redis_url):
    client = redis.Redis.from_url(redis_url)
    yield Store(client, history_max=5)
    client.close()


def metric(store, field):
    value = store.client.hget(keys.METRICS, field)
    return int(value) if value is not None else 0


def test_same_event_five_times_applies_once(store):
    e = ev("e1", 3000, "delivered", True, 1)
    applied = [store.apply_batch([e]) for _ in range(5)]
    assert [len(a) for a in applied] == [1, 0, 0, 0, 0]
    assert len(store.history("REF1")) == 1
    assert metric(store, 'tspipe_events_total{channel="sms",kind="delivery",outcome="delivered"}') == 1
    assert metric(store, "tspipe_dedup_hits_total") == 4
    assert metric(store, "tspipe_processing_lag_seconds_count") == 1
    assert metric(store, 'tspipe_processing_lag_seconds_bucket{le="0.1"}') == 1
    assert metric(store, 'tspipe_processing_lag_seconds_bucket{le="+Inf"}') == 1


def test_duplicates_inside_one_batch(store):
    e = ev("e1", 3000, "delivered", True, 1)
    assert len(store.apply_batch([e, e, e])) == 1


def test_final_beats_later_intermediate(store):
    store.apply_batch([ev("a", 3000, "delivered", True, 10)])
    store.apply_batch([ev("b", 3002, "pending", False, 5)])  # older, intermediate, late
    assert store.state("REF1").status.code == 3000
    assert store.client.zscore(keys.PENDING_INDEX, "REF1") is None


def test_whatsapp_read_beats_delivered_both_orders(store):
    delivered = ev("d", 3000, "delivered", False, 10, channel=Channel.WHATSAPP)
    read = ev("r", 3005, "read", True, 20, channel=Channel.WHATSAPP, kind=Kind.READ)
    store.apply_batch([delivered, read])
    assert store.state("REF1").status.code == 3005
    store.client.flushall()
    store.apply_batch([read])
    store.apply_batch([delivered])
    assert store.state("REF1").status.code == 3005


@pytest.mark.parametrize("seed", range(6))
def test_verify_statuses_shuffled(store, seed):
    events = [
        ev("290", 290, "pending", False, 1, kind=Kind.VERIFY),
        ev("203", 203, "pending", False, 2, kind=Kind.VERIFY),
        ev("200", 200, "delivered", True, 3, kind=Kind.VERIFY),
    ]
    random.Random(seed).shuffle(events)
    for e in events:
        store.apply_batch([e])
    assert store.state("REF1").status.code == 200
    assert len(store.history("REF1")) == 3


def test_pending_index_tracks_non_final_by_when_it_was_applied(store):
    """Scored on our clock, not the event's: pruning by the status API's window must not trust a sender's time."""
    before = time.time()
    store.apply_batch([ev("p", 3002, "pending", False, 5)])
    assert before - 1 <= store.client.zscore(keys.PENDING_INDEX, "REF1") <= time.time() + 1


def test_history_is_capped(store):
    store.apply_batch([ev(f"e{i}", 3002, "pending", False, i) for i in range(9)])
    assert [h.occurred_at for h in store.history("REF1")] == [T0 + timedelta(seconds=i) for i in range(4, 9)]


@pytest.mark.parametrize("seed", range(6))
def test_stop_start_stop_shuffled_keeps_newest(store, seed):
    def mo(i, action, t):
        return ev(f"mo{i}", 1500, "received", True, t, ref=f"M{i}", kind=Kind.INBOUND, action=action,
                  keyword=action.value.upper())

    events = [mo(1, Action.STOP, 1), mo(2, Action.START, 2), mo(3, Action.STOP, 3)]
    random.Random(seed).shuffle(events)
    for e in events:
        store.apply_batch([e])
    state = store.optout("15551234567")
    assert state.opted_out and state.keyword == "STOP" and state.channel == "sms"
    assert state.updated_at.startswith("2024-01-01T00:00:03")
    assert store.client.zscore(keys.OPTOUT_INDEX, "15551234567") is not None


def test_old_stop_cannot_undo_newer_start(store):
    store.apply_batch([ev("s", 1500, "received", True, 10, kind=Kind.INBOUND, action=Action.START)])
    store.apply_batch([ev("o", 1500, "received", True, 5, kind=Kind.INBOUND, action=Action.STOP)])
    assert not store.optout("15551234567").opted_out
    assert metric(store, 'tspipe_optout_changes_total{action="start"}') == 1
    assert metric(store, 'tspipe_optout_changes_total{action="stop"}') == 0


def test_email_optout_uses_email_address(store):
    e = ev("u", 1500, "received", True, 1, kind=Kind.INBOUND, channel=Channel.EMAIL, action=Action.STOP,
           email="a@example.com", phone=None)
    for _ in range(5):
        store.apply_batch([e])
    assert store.optout("a@example.com").opted_out
    assert metric(store, 'tspipe_optout_changes_total{action="stop"}') == 1


def test_quarantine_round_trip(store):
    entry = QuarantineEntry(id="x", reason="not JSON", received_at=1.0, quarantined_at=2.0, body="{")
    store.quarantine([entry])
    assert store.quarantined() == [entry]
    assert metric(store, "tspipe_quarantined_total") == 1
    assert store.purge_quarantine() == 1
    assert store.quarantined() == []


def test_thousand_event_batch_is_one_call(store):
    events = [ev(f"b{i}", 3000, "delivered", True, i, ref=f"R{i}") for i in range(1000)]
    before = store.client.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0)
    assert len(store.apply_batch(events)) == 1000
    after = store.client.info("commandstats")["cmdstat_evalsha"]["calls"]
    assert after - before == 1


def test_big_batch_is_chunked_and_positions_map_back(store):
    events = [ev(f"c{i}", 3000, "delivered", True, i, ref=f"C{i}") for i in range(2500)]
    events.insert(1700, events[1500])  # a duplicate in a later chunk
    applied = store.apply_batch(events)
    assert [e.event_id for e in applied] == [f"c{i}" for i in range(2500)]


def test_fanout_outbox_hands_back_unconfirmed_duplicates(store):
    """Applied but never confirmed (worker died before fan-out finished): the redelivery fans out again."""
    first = ev("o1", 3000, Outcome.DELIVERED, True, 1)
    assert store.apply_batch_with_outbox([first]) == ([first], [], {"o1"})
    assert store.apply_batch_with_outbox([first]) == ([], [first], {"o1"})  # still unconfirmed
    store.confirm_fanout([first])
    assert store.apply_batch_with_outbox([first]) == ([], [], set())
    assert store.seen([first]) == [True]
    # With nothing to fan out, new events are confirmed at once.
    second = ev("o2", 3000, Outcome.DELIVERED, True, 2, ref="REF2")
    assert store.apply_batch([second]) == [second]
    assert store.apply_batch_with_outbox([second]) == ([], [], set())
