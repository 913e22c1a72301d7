"""The archive writer against a real PostgreSQL: one COPY per batch, idempotent on event_id, day partitions."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from archive import partitions
from archive.migrate import available, migrate
from archive.writer import Writer
from tests.archive.support import connect, delivery_body, now_minus, row_of
from tests.conftest import fixture_bodies


def test_migrations_apply_once(database_url):
    conn = connect(database_url)
    assert migrate(conn) == []
    versions = [v for (v,) in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]
    assert versions == [v for v, _, _ in available()]


def test_every_fixture_is_archived_once_with_its_body_and_request_id(database_url):
    conn = connect(database_url)
    writer = Writer()
    rows = [row_of(body, request_id=f"req-{i}") for i, body in enumerate(fixture_bodies().values())]
    assert len(writer.archive(conn, rows)) == len(rows)
    # The same batch again (a redelivery) and a batch holding one event twice add nothing.
    assert writer.archive(conn, rows) == []
    assert writer.archive(conn, [rows[0], rows[0]]) == []
    stored = {r[0]: r[1:] for r in conn.execute("SELECT event_id, raw, request_id, event FROM events")}
    assert len(stored) == len(rows)
    for row in rows:
        raw, request_id, event = stored[row.event.event_id]
        assert bytes(raw) == row.body
        assert request_id == row.request_id
        assert "raw" not in event
        assert event["event_id"] == row.event.event_id
        assert event["kind"] == row.event.kind.value


def test_a_duplicate_inside_one_batch_is_written_once(database_url):
    conn = connect(database_url)
    row = row_of(delivery_body("R1", "+1 123-456-7890", now_minus(minutes=5)))
    assert len(Writer().archive(conn, [row, row])) == 1
    assert conn.execute("SELECT count(*), min(phone_number) FROM events").fetchone() == (1, "11234567890")


def test_an_undated_body_received_twice_is_archived_once(database_url):
    """No updated_on: filed by received_at, and a re-send with another received_at is still the same event."""
    conn = connect(database_url)
    body = delivery_body("R2", "11234567890", None)
    first = row_of(body, received_at=now_minus(days=1, minutes=1))
    again = row_of(body, received_at=now_minus(minutes=1))
    writer = Writer()
    assert len(writer.archive(conn, [first])) == 1
    assert writer.archive(conn, [again]) == []
    assert writer.archive(conn, [again, first]) == []
    assert conn.execute("SELECT count(*) FROM events WHERE undated").fetchone()[0] == 1


def test_rows_go_to_day_partitions_and_odd_dates_to_the_default(database_url):
    conn = connect(database_url)
    today = partitions.today()
    recent = row_of(delivery_body("R3", "11234567890", now_minus(hours=1)))
    odd_day = datetime(1999, 12, 31, 23, 0, tzinfo=timezone.utc)
    odd = row_of(delivery_body("R4", "11234567890", odd_day))
    Writer().archive(conn, [recent, odd])
    where = dict(conn.execute("SELECT event_id, tableoid::regclass::text FROM events").fetchall())
    assert where[recent.event.event_id] == partitions.name_of(recent.occurred_at.date())
    assert where[odd.event.event_id] == partitions.DEFAULT
    # Creating that odd day's partition moves its row out of the default one.
    assert partitions.create(conn, [odd_day.date()]) == [odd_day.date()]
    where = dict(conn.execute("SELECT event_id, tableoid::regclass::text FROM events").fetchall())
    assert where[odd.event.event_id] == "events_19991231"
    assert today in partitions.existing(conn) or recent.occurred_at.date() in partitions.existing(conn)


def test_stored_event_is_the_normalized_event(database_url):
    conn = connect(database_url)
    body = fixture_bodies()["mo_sms_keyword_start"]
    row = row_of(body, channel="sms")
    Writer().archive(conn, [row])
    (event,) = conn.execute("SELECT event FROM events").fetchone()
    expected = json.loads(pipeline_json(row))
    expected.pop("raw")
    assert event == expected


def pipeline_json(row) -> bytes:
    from pipeline.event import EVENT_ENCODER

    return EVENT_ENCODER.encode(row.event)
