"""Archive search against a real PostgreSQL: filters, keyset paging newest first, raw bodies, index use."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from archive import search
from archive.search import BadQuery, parse_query
from archive.writer import Writer
from tests.archive.support import connect, delivery_body, now_minus, row_of


def run(conn, **params) -> dict:
    return json.loads(search.search(conn, parse_query({k: str(v) for k, v in params.items()})))


def test_phone_search_finds_every_spelling_newest_first(database_url):
    conn = connect(database_url)
    base = now_minus(hours=3)
    rows = [row_of(delivery_body(f"REF{i}", "+1 (123) 456-7890" if i % 2 else "11234567890", base + timedelta(minutes=i)))
            for i in range(6)]
    rows.append(row_of(delivery_body("OTHER", "447700900123", base)))
    Writer().archive(conn, rows)
    found = run(conn, phone_number="+1 123 456 7890")
    assert [e["reference_id"] for e in found["events"]] == [f"REF{i}" for i in reversed(range(6))]
    assert found["next_cursor"] is None
    assert all("raw" not in e for e in found["events"])
    assert run(conn, reference_id="OTHER")["events"][0]["phone_number"] == "447700900123"
    assert run(conn, phone_number="11234567890", since=(base + timedelta(minutes=2)).isoformat(),
               until=(base + timedelta(minutes=3)).isoformat())["events"][0]["reference_id"] == "REF3"
    assert run(conn, kind="delivery", outcome="delivered", channel="sms", limit=1000)["events"]
    assert run(conn, kind="inbound")["events"] == []


def test_paging_visits_every_match_once_while_events_arrive(database_url):
    conn = connect(database_url)
    writer = Writer()
    base = now_minus(hours=5)
    same_time = base + timedelta(minutes=30)
    # Ten events at one instant (ties broken by event_id) among twenty others.
    rows = [row_of(delivery_body(f"R{i}", "11234567890", same_time if i < 10 else base + timedelta(minutes=i)))
            for i in range(30)]
    writer.archive(conn, rows)
    expected = {r.event.event_id for r in rows}
    seen: list[str] = []
    cursor = None
    late = 0
    while True:
        params = {"phone_number": "11234567890", "limit": 4}
        if cursor:
            params["cursor"] = cursor
        result = run(conn, **params)
        seen += [e["event_id"] for e in result["events"]]
        cursor = result["next_cursor"]
        if cursor is None:
            break
        # Meanwhile: one event newer than everything, one older than everything (a late callback).
        newer = row_of(delivery_body(f"NEW{late}", "11234567890", now_minus(minutes=1) - timedelta(seconds=late)))
        older = row_of(delivery_body(f"OLD{late}", "11234567890", base - timedelta(days=1, minutes=late)))
        writer.archive(conn, [newer, older])
        expected.add(older.event.event_id)
        late += 1
    assert len(seen) == len(set(seen)), "an event was visited twice"
    assert expected <= set(seen), "an event was skipped"


def test_raw_bodies_on_request(database_url):
    conn = connect(database_url)
    row = row_of(delivery_body("RAW1", "11234567890", now_minus(minutes=3)))
    Writer().archive(conn, [row])
    (event,) = run(conn, reference_id="RAW1", raw=1)["events"]
    assert event["raw"] == row.body.decode()
    assert event["event_id"] == row.event.event_id


@pytest.mark.parametrize("params, named", [
    ({"kind": "sms"}, "kind"),
    ({"outcome": "nope"}, "outcome"),
    ({"channel": "fax"}, "channel"),
    ({"since": "yesterday"}, "since"),
    ({"limit": "0"}, "limit"),
    ({"limit": "1001"}, "limit"),
    ({"limit": "ten"}, "limit"),
    ({"cursor": "!!!"}, "cursor"),
    ({"phone_number": "abc"}, "phone_number"),
    ({"colour": "red"}, "colour"),
    ({"raw": "yes"}, "raw"),
])
def test_bad_parameters_are_named(params, named):
    with pytest.raises(BadQuery, match=named):
        parse_query(params)


def test_phone_search_over_a_large_table_uses_the_index(database_url):
    """200,000 archived events over 20 days: EXPLAIN shows the phone number index, no sequential scan."""
    conn = connect(database_url)
    from archive import partitions

    days = [partitions.today() - timedelta(days=n) for n in range(20)]
    partitions.create(conn, days)
    conn.execute(
        """
        INSERT INTO events (occurred_at, event_id, received_at, kind, outcome, status_code, reference_id,
                            phone_number, event, raw)
        SELECT now() - (n * 8 % (20 * 86400)) * interval '1 second', md5(n::text), now(), 'delivery', 'delivered', 200,
               md5((n / 3)::text), (10000000000 + n % 50000)::text, '{}'::jsonb, ''::bytea
        FROM generate_series(1, 200000) AS n
        """
    )
    conn.execute("ANALYZE events")
    statement, args = search.build(parse_query({"phone_number": "10000012345"}))
    plan = "\n".join(r[0] for r in conn.execute(b"EXPLAIN " + statement.as_bytes(conn), args))
    filled = {name for (name,) in conn.execute("SELECT DISTINCT tableoid::regclass::text FROM events")}
    assert len(filled) >= 19
    for name in filled:
        assert f"Index Scan using {name}_phone_number_occurred_at_event_id_idx" in plan, plan
        assert f"Seq Scan on {name} " not in plan, plan
