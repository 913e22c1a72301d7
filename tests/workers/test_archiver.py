"""Workers hand every batch to the archive through the Redis backlog; the archive writer drains it into PostgreSQL."""

from __future__ import annotations

import time

import psycopg
import pytest
import redis

from config.settings import reset_settings_cache
from pipeline.record import Record, encode_batch
from store.archive_backlog import BYTES, DROPPED, METRICS, STREAM, Backlog
from tests.conftest import fixture_bodies
from workers.archiver import Archiver
from store.state import Store
from workers.tasks import process_batch, reset_store


@pytest.fixture
def store(redis_url):
    client = redis.Redis.from_url(redis_url)
    reset_store()
    yield Store(client)
    reset_store()
    client.close()


@pytest.fixture
def archive_on(monkeypatch, database_url):
    monkeypatch.setenv("DATABASE_URL", database_url)
    reset_settings_cache()
    return database_url


def blob(bodies, prefix="req") -> bytes:
    return encode_batch([Record(b, time.time(), None, f"{prefix}{i}") for i, b in enumerate(bodies)])


def archived(url: str) -> list[tuple[str, str]]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT event_id, request_id FROM events ORDER BY event_id").fetchall()


def test_every_applied_event_reaches_the_archive_once(store, archive_on):
    bodies = list(fixture_bodies().values())
    batch = blob(bodies)
    applied = process_batch(batch, store)
    # The same batch again (a redelivery after a worker crash) is all duplicates in Redis...
    assert process_batch(batch, store) == []
    archiver = Archiver(Backlog(store.client), archive_on, block_ms=10)
    archiver.backlog.ensure_group()
    while archiver.run_once():
        pass
    rows = archived(archive_on)
    # ...and in the archive: each event once, with its request id.
    assert sorted(e.event_id for e in applied) == [event_id for event_id, _ in rows]
    assert {request_id for _, request_id in rows} == {f"req{i}" for i in range(len(bodies))}
    assert store.client.xlen(STREAM) == 0
    assert int(store.client.get(BYTES)) == 0
    assert int(store.client.hget(METRICS, "tspipe_archive_lag_seconds_count")) == 2 * len(bodies)
    archiver._close()


def test_archive_off_means_no_backlog(store):
    process_batch(blob(fixture_bodies().values()), store)
    assert store.client.exists(STREAM) == 0


def test_a_full_backlog_drops_and_counts_instead_of_waiting(store):
    backlog = Backlog(store.client, max_bytes=2000)
    big = blob(list(fixture_bodies().values()))
    assert len(big) > 2000
    assert backlog.add(big, 10) is False
    assert int(store.client.hget(METRICS, DROPPED)) == 10
    small = blob([fixture_bodies()["read_notification"]])
    assert backlog.add(small, 1) is True
    assert backlog.size()[:2] == (1, len(small))


def test_postgres_down_keeps_the_batch_until_it_is_back(store, archive_on):
    process_batch(blob(fixture_bodies().values()), store)
    backlog = Backlog(store.client)
    backlog.ensure_group()
    down = Archiver(backlog, "postgresql://nobody@/nothing?host=/nonexistent", block_ms=10, consumer="w1")
    with pytest.raises(psycopg.Error):
        down.run_once()
    assert backlog.size()[0] == 1  # still waiting, held by w1
    # The same writer once PostgreSQL answers: it retries its own unacknowledged entry first.
    back = Archiver(backlog, archive_on, block_ms=10, consumer="w1")
    assert back.run_once() == len(fixture_bodies())
    assert backlog.size()[0] == 0
    back._close()


def test_a_dead_writers_batches_are_reclaimed(store, archive_on):
    process_batch(blob(fixture_bodies().values()), store)
    backlog = Backlog(store.client)
    backlog.ensure_group()
    assert len(backlog.read("dead", 10, 10)) == 1  # read, never acknowledged: its writer died
    assert backlog.read("other", 10, 10, reclaim_idle_ms=60_000) == []
    time.sleep(0.05)
    assert len(backlog.read("other", 10, 10, reclaim_idle_ms=10)) == 1
