"""Retention against a real PostgreSQL: beat drops whole day partitions past TSPIPE_ARCHIVE_DAYS and makes future ones."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone

from archive import partitions
from archive.writer import Writer
from config.settings import reset_settings_cache
from tests.archive.support import connect, delivery_body, row_of


def test_beat_job_drops_old_days_whole_and_creates_days_ahead(database_url, monkeypatch):
    conn = connect(database_url)
    today = partitions.today()
    ages = [0, 1, 29, 30, 31, 45, 100]
    rows = [row_of(delivery_body(f"AGE{age}", "11234567890",
                                 datetime.combine(today - timedelta(days=age), time(12), tzinfo=timezone.utc)))
            for age in ages]
    Writer(retention_days=365).archive(conn, rows)
    assert {today - timedelta(days=a) for a in ages} <= partitions.existing(conn)

    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("TSPIPE_ARCHIVE_DAYS", "30")
    reset_settings_cache()
    from workers.app import make_celery
    from workers.archive_maintenance import archive_maintain

    assert make_celery().conf.beat_schedule["tspipe-archive-maintain"]["task"] == "tspipe.archive_maintain"
    assert archive_maintain() == 3  # the days 31, 45 and 100 days old

    kept = {ref for (ref,) in conn.execute("SELECT reference_id FROM events")}
    assert kept == {"AGE0", "AGE1", "AGE29", "AGE30"}
    days = partitions.existing(conn)
    assert min(days) == today - timedelta(days=30)
    assert {today + timedelta(days=n) for n in range(partitions.AHEAD_DAYS + 1)} <= days
    # Retention is table drops: no day partition older than the cutoff is left, and running again drops nothing.
    assert archive_maintain() == 0


def test_no_beat_job_without_an_archive(monkeypatch):
    reset_settings_cache()
    from workers.app import make_celery

    assert "tspipe-archive-maintain" not in make_celery().conf.beat_schedule


def test_message_rows_of_the_figures_are_dropped_by_whole_generations(database_url):
    """insight_messages (what each message counts as) is kept as long as the events, then dropped whole."""
    from archive import message_generations as gens
    from archive import stats
    from tests.archive.insight_support import sms_report

    conn = connect(database_url)
    now = datetime.now(timezone.utc)  # after the migration made generation 1
    t0 = now - timedelta(minutes=30)
    writer = Writer(retention_days=30)
    writer.archive(conn, [row_of(sms_report("OLD" + "0" * 29, 203, t0), channel="sms"),
                          row_of(sms_report("KEPT" + "0" * 28, 203, t0), channel="sms")])
    assert gens.span_of(30) == timedelta(days=4)
    assert gens.rotate(conn, 30, now + timedelta(days=1)) == ([], [])  # generation 1 is current for 4 days
    assert gens.rotate(conn, 30, now + timedelta(days=4)) == ([2], [])

    # A callback for a message of the old generation moves its row there; a new message goes to the new one.
    writer.archive(conn, [row_of(sms_report("KEPT" + "0" * 28, 200, t0 + timedelta(seconds=5)), channel="sms"),
                          row_of(sms_report("NEW" + "0" * 29, 203, t0), channel="sms")])
    where = dict(conn.execute("SELECT reference_id, generation FROM insight_messages").fetchall())
    assert where == {"OLD" + "0" * 29: 1, "KEPT" + "0" * 28: 1, "NEW" + "0" * 29: 2}
    (group,) = stats.query(conn, "channel", t0 - timedelta(hours=1), now).groups
    assert (group.sent, group.final, group.delivered) == (3, 1, 1)  # KEPT counted once, as delivered

    # Generation 1 goes once generation 2 began more than 30 days ago: dropped as a table, with its rows.
    assert gens.rotate(conn, 30, now + timedelta(days=33)) == ([3], [])
    assert gens.rotate(conn, 30, now + timedelta(days=34, seconds=1)) == ([], [1])
    assert conn.execute("SELECT to_regclass('insight_messages_g1')").fetchone()[0] is None
    assert [g for g, _ in gens.generations(conn)] == [2, 3]
    assert {r for (r,) in conn.execute("SELECT reference_id FROM insight_messages")} == {"NEW" + "0" * 29}
    # The figures themselves (the rollups) are kept.
    (group,) = stats.query(conn, "channel", t0 - timedelta(hours=1), now).groups
    assert group.sent == 3
