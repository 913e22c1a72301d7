"""Queue -> real Celery worker -> Redis, with a local aiohttp server standing in for Telesign."""

from __future__ import annotations

import base64
import os
import time
from urllib.parse import parse_qs

from celery.contrib.testing.worker import start_worker

from config.settings import reset_settings_cache
from pipeline.record import INGEST_BATCH_TASK, Record, encode_batch
from tests.conftest import REPO_ROOT, fixture_bodies
from store import keys, message
from workers import tasks
from workers.app import get_app
from tests.workers.fake_telesign import FakeTelesign
from tests.workers.journal_support import enqueue, kill_while_applying, requeue_lost, settled, start_worker_process


def wait_for(predicate, timeout: float = 15.0, progress=None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"condition not met in {timeout:.0f}s" + (f"; progress: {progress()}" if progress else ""))


def use_fake_telesign(monkeypatch, fake: FakeTelesign, autoreplies: str) -> None:
    """Point auto-replies at the local fake Telesign with known credentials and reply texts."""
    monkeypatch.setenv("TELESIGN_API_URL", fake.url)
    monkeypatch.setenv("TELESIGN_CUSTOMER_ID", "CUST")
    monkeypatch.setenv("TELESIGN_API_KEY", "S2V5LWZvci10aGUtdGVzdHMh")
    monkeypatch.setenv("TSPIPE_AUTOREPLIES", autoreplies)
    reset_settings_cache()


def send(*bodies: bytes) -> None:
    get_app().send_task(INGEST_BATCH_TASK, args=[encode_batch([Record(b, time.time()) for b in bodies])])


def test_queue_to_state_with_real_worker(store):
    bodies = fixture_bodies()
    with start_worker(get_app(), pool="solo", perform_ping_check=False, shutdown_timeout=10):
        send(*bodies.values())
        send(*bodies.values())  # a redelivered batch changes nothing
        wait_for(lambda: int(store.client.hget(keys.METRICS, "tspipe_dedup_hits_total") or 0) == len(bodies))
    assert store.client.llen(keys.RECENT_EVENTS) == len(bodies)
    assert store.state("35C8B5D509BC10689196FED2AD551B8A") is not None


def test_help_sends_one_autoreply_after_three_500s(store, monkeypatch):
    help_body = fixture_bodies()["mo_sms_keyword_start"].replace(b'"action": "start"', b'"action": "help"')
    with FakeTelesign(failures=3) as fake:
        use_fake_telesign(monkeypatch, fake, '{"help": {"default": "Help here", "RS": "Pomoc"}}')
        with start_worker(get_app(), pool="solo", perform_ping_check=False, shutdown_timeout=10):
            for _ in range(3):
                send(help_body)
            wait_for(lambda: len(fake.requests) >= 4, timeout=30)
            time.sleep(0.5)  # the duplicates' tasks have run and must not have sent
    assert len(fake.requests) == 4
    last = fake.requests[-1]
    assert last["path"] == "/v1/messaging"
    assert last["auth"] == "Basic " + base64.b64encode(b"CUST:S2V5LWZvci10aGUtdGVzdHMh").decode()
    form = parse_qs(last["body"].decode())
    assert form == {"phone_number": ["11234567890"], "message": ["Pomoc"], "message_type": ["ARN"]}
    assert store.client.llen(keys.DEADLETTER) == 0


def test_autoreply_exhausted_goes_to_deadletter(store, monkeypatch):
    help_body = fixture_bodies()["mo_sms_keyword_start"].replace(b'"action": "start"', b'"action": "help"')
    # The task object of this test's app (tasks.autoreply is a shared_task proxy: it follows the current app).
    monkeypatch.setattr(get_app().tasks[tasks.AUTOREPLY_TASK], "max_retries", 1)
    with FakeTelesign(failures=100) as fake:
        use_fake_telesign(monkeypatch, fake, '{"help": {"default": "Help here"}}')
        with start_worker(get_app(), pool="solo", perform_ping_check=False, shutdown_timeout=10):
            send(help_body)
            wait_for(lambda: store.client.llen(keys.DEADLETTER) == 1, timeout=20)
    entry = __import__("json").loads(store.client.lindex(keys.DEADLETTER, 0))
    assert entry["kind"] == "autoreply" and entry["attempts"] == 2 and "500" in entry["error"]
    assert entry["payload"]["message"] == "Help here"


def test_sigkill_mid_batch_applies_every_event_once(store, tmp_path):
    """A worker killed while a batch is in flight: the batch comes back, and dedup keeps it exactly-once.

    Batches are queued the way the ingress does, journalled: a kill that lands between kombu's
    BRPOP and its bookkeeping loses the message from the queue, and only the journal brings it back.
    """
    base = fixture_bodies()["delivery_rcs_fallback_to_sms"]
    n_batches, per_batch = 40, 250
    for b in range(n_batches):
        enqueue(store.client, [Record(base.replace(b"35C8B5D509BC10689196FED2AD551B8A", f"REF{b:03d}{i:04d}".encode()),
                                    time.time()) for i in range(per_batch)])
    total = n_batches * per_batch
    worker_env = dict(os.environ, PYTHONPATH=REPO_ROOT)
    kill_while_applying(store.client, start_worker_process(worker_env, tmp_path / "worker1.log"), timeout=60, after=0.2)
    done_before = message.count(store.client)
    assert done_before < total, "the worker finished before it was killed; make the batches bigger"
    # Past the visibility timeout, the restarted worker restores the killed one's batch at start-up.
    time.sleep(2.5)
    second = start_worker_process(worker_env, tmp_path / "worker2.log")
    try:
        field = 'tspipe_events_total{channel="sms",kind="delivery",outcome="delivered"}'
        applied = lambda: int(store.client.hget(keys.METRICS, field) or 0)  # noqa: E731
        progress = lambda: (f"applied {applied()} of {total}, queued {store.client.llen('tspipe.ingest')}, "  # noqa: E731
                            f"unacked {store.client.hlen('unacked')}, journal {store.client.hlen(keys.JOURNAL)}")
        wait_for(lambda: settled(store.client), timeout=120, progress=progress)
        requeued = requeue_lost(store.client)
        wait_for(lambda: applied() >= total and store.client.hlen(keys.JOURNAL) == 0, timeout=60, progress=progress)
        time.sleep(0.3)
    finally:
        second.terminate()
        second.wait(10)
    print(f"\n[sigkill] applied before the kill {done_before}, lost in transit and queued again {requeued}")
    assert int(store.client.hget(keys.METRICS, field)) == total
    assert message.count(store.client, "REF*") == total


def test_help_five_times_sends_exactly_one_reply(store, monkeypatch):
    help_body = fixture_bodies()["mo_sms_keyword_start"].replace(b'"action": "start"', b'"action": "help"')
    with FakeTelesign() as fake:
        use_fake_telesign(monkeypatch, fake, '{"help": {"default": "Help here"}}')
        with start_worker(get_app(), pool="solo", perform_ping_check=False, shutdown_timeout=10):
            for _ in range(5):
                send(help_body)
            wait_for(lambda: int(store.client.hget(keys.METRICS, "tspipe_dedup_hits_total") or 0) == 4)
            wait_for(lambda: len(fake.requests) >= 1)
            time.sleep(0.5)
    assert len(fake.requests) == 1
    assert parse_qs(fake.requests[0]["body"].decode())["message"] == ["Help here"]
