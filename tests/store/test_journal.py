"""The batch journal on a real Redis: a batch lost between the queue and a worker is queued again."""

from __future__ import annotations

import json
import time
import uuid

import pytest
import redis
from celery.contrib.testing.worker import start_worker

from config.settings import reset_settings_cache
from ingest.task_message import ingest_batch_message
from pipeline.record import Record, encode_batch
from tests.conftest import fixture_bodies
from store import journal, keys
from workers import tasks
from workers.app import get_app

QUEUE = "tspipe.ingest"


@pytest.fixture
def client(redis_url):
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.close()


def enqueue(client: redis.Redis, bodies: list[bytes], *, push: bool = True, now: float = 0.0) -> tuple[str, bytes]:
    """Queue and journal one batch as the ingress does; push=False loses the queue copy (a worker died in BRPOP)."""
    task_id = str(uuid.uuid4())
    message = ingest_batch_message(encode_batch([Record(b, time.time()) for b in bodies]), QUEUE, task_id)
    journal.enqueue(client, QUEUE, task_id, message, 30.0, now)
    if not push:
        client.lrem(QUEUE, 1, message)
    return task_id, message


def test_enqueue_writes_queue_and_journal_together(client):
    task_id, message = enqueue(client, [b"{}"], now=1000.0)
    assert client.lrange(QUEUE, 0, -1) == [message]
    assert client.hget(keys.JOURNAL, task_id) == message
    assert client.zscore(keys.JOURNAL_DUE, task_id) == 1030.0


def test_nothing_due_nothing_done(client):
    enqueue(client, [b"{}"], push=False, now=time.time())
    assert journal.Sweep(client, QUEUE, grace=30).run() == (0, 0, 0)
    assert client.llen(QUEUE) == 0


def test_a_batch_still_queued_is_left_alone(client):
    task_id, _ = enqueue(client, [b"{}"], now=0.0)
    assert journal.Sweep(client, QUEUE, grace=30).run(now=100.0) == (0, 1, 0)
    assert client.llen(QUEUE) == 1
    assert client.zscore(keys.JOURNAL_DUE, task_id) == 130.0  # checked again one grace later


def test_a_batch_held_by_a_worker_is_left_alone(client):
    task_id, message = enqueue(client, [b"{}"], push=False, now=0.0)
    tag = json.loads(message)["properties"]["delivery_tag"]
    client.hset(keys.KOMBU_UNACKED, tag, message)
    assert journal.Sweep(client, QUEUE, grace=30).run(now=100.0) == (0, 1, 0)
    assert client.llen(QUEUE) == 0


def test_a_lost_batch_is_queued_again_byte_for_byte(client):
    task_id, message = enqueue(client, [b"{}"], push=False, now=0.0)
    assert journal.Sweep(client, QUEUE, grace=30).run(now=100.0) == (1, 0, 0)
    assert client.lrange(QUEUE, 0, -1) == [message]
    # Queued again, it is "still queued" at the next check, not queued twice.
    assert journal.Sweep(client, QUEUE, grace=30).run(now=200.0) == (0, 1, 0)
    assert client.llen(QUEUE) == 1


def test_a_batch_that_keeps_failing_moves_to_the_stuck_list(client):
    task_id, message = enqueue(client, [b"{}"], push=False, now=0.0)
    sweep = journal.Sweep(client, QUEUE, grace=30, max_requeues=2)
    for i in range(2):
        assert sweep.run(now=100.0 + 100 * i) == (1, 0, 0)
        client.delete(QUEUE)  # taken and failed again
    assert sweep.run(now=400.0) == (0, 0, 1)
    assert client.lrange(keys.JOURNAL_STUCK, 0, -1) == [message]
    assert not client.hexists(keys.JOURNAL, task_id) and client.zcard(keys.JOURNAL_DUE) == 0


def test_forget_clears_every_trace(client):
    task_id, _ = enqueue(client, [b"{}"], push=False, now=0.0)
    journal.Sweep(client, QUEUE, grace=30).run(now=100.0)
    journal.forget(client, task_id)
    assert not client.hexists(keys.JOURNAL, task_id)
    assert client.zscore(keys.JOURNAL_DUE, task_id) is None
    assert not client.hexists(keys.JOURNAL_REQUEUES, task_id)


def test_lost_batch_reaches_the_store_through_a_real_worker(client, redis_url, monkeypatch):
    """The kombu gap: a batch popped by a worker that died before recording it. The sweep brings it back."""
    monkeypatch.setenv("REDIS_URL", redis_url)
    reset_settings_cache()
    tasks.reset_store()
    get_app().conf.broker_url = redis_url
    bodies = list(fixture_bodies().values())
    try:
        kept_id, _ = enqueue(client, bodies[:3], now=time.time())
        lost_id, _ = enqueue(client, bodies[3:], push=False, now=time.time() - 60)
        with start_worker(get_app(), pool="solo", perform_ping_check=False, shutdown_timeout=10):
            deadline = time.monotonic() + 20
            while client.hlen(keys.JOURNAL) > 1 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not client.hexists(keys.JOURNAL, kept_id)  # applied, then forgotten
            assert client.hexists(keys.JOURNAL, lost_id)  # lost: nobody will ever apply it
            assert tasks.journal_sweep() == 1
            while client.hlen(keys.JOURNAL) and time.monotonic() < deadline:
                time.sleep(0.05)
        assert client.hlen(keys.JOURNAL) == 0
        assert client.llen(keys.RECENT_EVENTS) == len(bodies)
    finally:
        tasks.reset_store()
        reset_settings_cache()


def test_beat_runs_the_sweep_every_third_of_the_grace():
    from config import load_settings
    from workers.app import make_celery

    entry = make_celery(load_settings({}, journal_grace_seconds=45)).conf.beat_schedule["tspipe-journal-sweep"]
    assert entry["task"] == tasks.JOURNAL_SWEEP_TASK and entry["schedule"] == 15.0
    assert entry["task"] in get_app().tasks
