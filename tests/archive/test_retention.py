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
