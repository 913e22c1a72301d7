"""Every key family has a TTL or a bound: each test writes past the bound and measures what is left."""

from __future__ import annotations

import redis
import pytest

from pipeline.event import Action, Kind
from store import deadletters, keys, quarantine
from store.capped_list import DEADLETTERS, QUARANTINE
from store.quarantine import QuarantineEntry
from store.state import Store
from tests.store.test_state import ev

KB = 1024


@pytest.fixture
def client(redis_url):
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def _dropped(client: redis.Redis, field: str) -> int:
    return int(client.hget(keys.METRICS, field) or 0)


def test_quarantine_is_capped_in_bytes_dropping_the_oldest(client):
    """One 64 KB junk body after another: the list stays under its byte cap whatever the count cap says."""
    junk = "x" * (64 * KB)
    for i in range(40):
        quarantine.add(client, [QuarantineEntry(id=f"q{i}", reason="not JSON", received_at=i, quarantined_at=i,
                                                body=junk)], max_entries=100000, max_bytes=1024 * KB)
    stored = sum(len(raw) for raw in client.lrange(keys.QUARANTINE, 0, -1))
    assert stored == QUARANTINE.size(client) <= 1024 * KB
    assert client.memory_usage(keys.QUARANTINE, samples=0) < 1.1 * 1024 * KB
    kept = [e.id for e in quarantine.newest(client, 100)]
    assert kept == [f"q{i}" for i in range(39, 39 - len(kept), -1)] and len(kept) == 15  # newest kept
    assert _dropped(client, "tspipe_quarantine_dropped_total") == 40 - 15


def test_quarantine_count_cap_still_holds(client):
    for i in range(30):
        quarantine.add(client, [QuarantineEntry(id=f"q{i}", reason="r", received_at=i, quarantined_at=i)],
                       max_entries=10)
    assert client.llen(keys.QUARANTINE) == 10
    assert QUARANTINE.size(client) == sum(len(r) for r in client.lrange(keys.QUARANTINE, 0, -1))


def test_dead_letters_are_capped_in_bytes_dropping_the_oldest(client):
    event = b'{"event_id":"e","text":"' + b"y" * (32 * KB) + b'"}'
    for i in range(50):
        deadletters.add(client, deadletters.new_entry("destination", "crm", event, f"HTTP 500 #{i}", 8),
                        max_bytes=512 * KB)
    assert DEADLETTERS.size(client) <= 512 * KB
    assert DEADLETTERS.size(client) == sum(len(r) for r in client.lrange(keys.DEADLETTER, 0, -1))
    errors = [e.error for e in deadletters.list_entries(client)]
    assert errors == [f"HTTP 500 #{i}" for i in range(50 - len(errors), 50)]  # oldest first, the newest kept
    assert _dropped(client, "tspipe_deadletters_dropped_total") == 50 - len(errors)


def test_dead_letter_size_follows_removal_and_purge(client):
    entries = [deadletters.new_entry("destination", f"d{i % 2}", b'{"event_id":"e"}', "x", 1) for i in range(6)]
    for entry in entries:
        deadletters.add(client, entry)
    assert deadletters.remove(client, [entries[0].id, entries[1].id]) == 2
    assert DEADLETTERS.size(client) == sum(len(r) for r in client.lrange(keys.DEADLETTER, 0, -1))
    assert deadletters.purge(client, "d0") == 2 and deadletters.count(client) == 2
    assert deadletters.purge(client) == 2 and DEADLETTERS.size(client) == 0


def test_dead_letters_read_a_page_at_a_time(client):
    for i in range(1200):
        deadletters.add_raw(client, b'{"id":"%d","kind":"plugin","target":"p","event":null,"failed_at":%d}' % (i, i))
    page = deadletters.list_entries(client, limit=5, offset=1000)
    assert [e.id for e in page] == [str(i) for i in range(1000, 1005)]
    assert sum(1 for _ in deadletters.iter_entries(client)) == 1200


def test_message_history_and_dedup_set_are_capped(client):
    store = Store(client, history_max=50)
    for start in range(0, 500, 100):
        store.apply_batch([ev(f"h{i}", 3002, "pending", False, i) for i in range(start, start + 100)])
    assert len(store.history("REF1")) == 50
    assert client.strlen(keys.MESSAGE.format(reference_id="REF1")) < 50 * 25 + 60


def test_recent_events_stay_at_their_size(client):
    store = Store(client, recent_max=200)
    for start in range(0, 1000, 250):
        store.apply_batch([ev(f"r{i}", 3000, "delivered", True, i, ref=f"R{i}") for i in range(start, start + 250)])
    assert client.llen(keys.RECENT_EVENTS) == 200


# Families without a TTL, and what bounds each.
BOUNDED = {
    keys.METRICS: "one field per label combination",
    keys.RECENT_EVENTS: "recent_max entries",
    keys.PENDING_INDEX: "pruned past the status window",
    keys.OPTOUT_INDEX: "one entry per opted-out address",
    keys.QUARANTINE: "byte cap", keys.QUARANTINE_BYTES: "a counter",
    keys.DEADLETTER: "byte cap", keys.DEADLETTER_BYTES: "a counter",
}


def test_every_key_the_store_writes_has_a_ttl_or_a_bound(client):
    store = Store(client, state_ttl=3600, dedup_ttl=600)
    events = [ev("a", 3002, "pending", False, 1), ev("b", 3000, "delivered", True, 2),
              ev("c", 3002, "pending", False, 1, ref="P"),
              ev("n", 1500, "received", True, 1, ref=None, kind=Kind.INBOUND),
              ev("s", 1500, "received", True, 3, ref="MO", kind=Kind.INBOUND, action=Action.STOP, keyword="STOP")]
    store.apply_batch_with_outbox(events)  # unconfirmed: the outbox keys stay
    store.quarantine([QuarantineEntry(id="q", reason="r", received_at=0, quarantined_at=0)])
    deadletters.add(client, deadletters.new_entry("destination", "crm", b"{}", "x", 1))
    store.claim_autoreply("s", "task-1", 600)
    unbounded = []
    for key in client.scan_iter():
        name = key.decode()
        if client.ttl(key) > 0 or name in BOUNDED:
            continue
        if name.startswith(keys.OPTOUT.format(address="")):
            continue  # an opt-out is kept for good, one small hash per address
        unbounded.append(name)
    assert not unbounded
