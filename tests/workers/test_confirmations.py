"""Opt-out confirmations hold up (issue 16 item 4, issue 11 item 7): a STOP gets exactly one confirmation
when Telesign retries it, when a worker is SIGKILLed mid-batch, and when its auto-reply is replayed from the
dead-letter queue; a START after the STOP gets one too. Real workers, real Redis, the fake Telesign."""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from urllib.parse import parse_qs

from celery.contrib.testing.worker import start_worker
from click.testing import CliRunner

from config.settings import reset_settings_cache
from pipeline.record import Record
from store import deadletters, keys
from tests.workers.delivery_support import wait_for
from tests.workers.fake_telesign import FakeTelesign
from tests.workers.journal_support import enqueue, kill_while_applying, requeue_lost, settled, start_worker_process
from tests.workers.test_celery import send, use_fake_telesign
from tspipe.cli import cli
from workers import tasks
from workers.app import get_app
from tests.conftest import REPO_ROOT

REPLIES = '{"stop": {"default": "You are opted out"}, "start": {"default": "Welcome back"}}'


def sms(n: int, text: str, second: int = 0) -> bytes:
    """An inbound SMS from phone number n (Telesign sends no action of its own: tspipe detects it)."""
    return json.dumps({
        "status": {"code": 1500, "description": "Delivered to customer", "updated_on": f"2024-05-01T10:{second // 60:02d}:{second % 60:02d}Z"},
        "reference_id": f"C{n}-{second}", "sub_resource": "mo_sms",
        "user_response": {"sender_id": "4442", "iso_country_code": "US", "phone_number": f"1555020{n:04d}",
                          "mo_message": text},
    }).encode()


def replies(fake: FakeTelesign) -> list[tuple[str, str]]:
    """(phone number, message) of every SMS reply the fake Telesign received, in order."""
    out = []
    for request in fake.requests:
        form = parse_qs(request["body"].decode())
        out.append((form["phone_number"][0], form["message"][0]))
    return out


def test_stop_retried_by_telesign_gets_one_confirmation_and_a_later_start_one_too(store, monkeypatch):
    stop, start = sms(1, "STOP", second=1), sms(1, "start", second=2)
    with FakeTelesign() as fake:
        use_fake_telesign(monkeypatch, fake, REPLIES)
        with start_worker(get_app(), pool="solo", perform_ping_check=False, shutdown_timeout=10):
            send(stop, stop)  # twice in one batch
            send(stop)  # Telesign's retries: the same bytes again, in later batches
            send(stop)
            wait_for(lambda: len(fake.requests) >= 1)
            send(start)
            wait_for(lambda: len(fake.requests) >= 2)
            send(start)
            time.sleep(0.5)  # the duplicates' tasks have run by now, and must not have sent
    assert replies(fake) == [("15550200001", "You are opted out"), ("15550200001", "Welcome back")]
    assert store.optout("15550200001").opted_out is False


def test_dlq_replay_of_an_autoreply_sends_it_once(store, monkeypatch):
    """Issue 11 item 7: the replayed task's claim was refused (the dead task's id still held it), so replay sent nothing."""
    stop = sms(2, "stop")
    monkeypatch.setenv("TSPIPE_AUTOREPLIES", REPLIES)
    reset_settings_cache()
    with start_worker(get_app(), pool="solo", perform_ping_check=False, shutdown_timeout=10):
        send(stop)  # no Telesign credentials yet: the reply is dead-lettered
        wait_for(lambda: len(deadletters.list_entries(store.client, kind="autoreply")) == 1)
    (entry,) = deadletters.list_entries(store.client, kind="autoreply")
    raw = store.client.lindex(keys.DEADLETTER, 0)
    runner = CliRunner()
    with FakeTelesign() as fake:
        use_fake_telesign(monkeypatch, fake, REPLIES)
        with start_worker(get_app(), pool="solo", perform_ping_check=False, shutdown_timeout=10):
            result = runner.invoke(cli, ["dlq", "replay", "--id", entry.id])
            assert result.exit_code == 0, result.output
            assert wait_for(lambda: len(fake.requests) >= 1)
            store.client.lpush(keys.DEADLETTER, raw)  # the same entry again (a replay that crashed before removing it)
            assert runner.invoke(cli, ["dlq", "replay", "--all"]).exit_code == 0
            send(stop)  # and a Telesign retry of the STOP, late
            time.sleep(1.0)
    assert replies(fake) == [("15550200002", "You are opted out")]
    assert deadletters.list_entries(store.client) == []


def test_a_reply_that_exhausted_its_retries_is_released_for_replay(store, monkeypatch):
    """The other way into the DLQ: Telesign kept failing. The dead letter must not keep the claim either."""
    payload = {"event_id": "e-retry", "action": "stop", "channel": "sms", "phone_number": "15550200003",
               "email": None, "message": "You are opted out"}
    autoreply = get_app().tasks[tasks.AUTOREPLY_TASK]
    with FakeTelesign(failures=100) as fake:
        use_fake_telesign(monkeypatch, fake, REPLIES)
        outcome = autoreply.apply(args=[payload], retries=tasks.AUTOREPLY_MAX_RETRIES).get()
    assert outcome == "dead-lettered" and len(fake.requests) == 1
    assert store.client.exists(keys.AUTOREPLY_CLAIM.format(event_id="e-retry")) == 0
    with FakeTelesign() as fake:
        use_fake_telesign(monkeypatch, fake, REPLIES)
        assert autoreply.apply(args=[payload], task_id="replayed").get() == "sent"
        assert autoreply.apply(args=[payload], task_id="replayed").get() == "duplicate"  # redelivered after sending
        assert autoreply.apply(args=[payload], task_id="another").get() == "duplicate"
    assert len(fake.requests) == 1


def test_sigkill_mid_batch_each_stop_gets_one_confirmation(store, redis_url, tmp_path):
    n_batches, per_batch = 6, 150
    for b in range(n_batches):
        enqueue(store.client, [Record(sms(b * per_batch + i, "Stop."), time.time()) for i in range(per_batch)])
    total = n_batches * per_batch
    with FakeTelesign() as fake:
        env = dict(os.environ, PYTHONPATH=REPO_ROOT, REDIS_URL=redis_url, TSPIPE_LOG_LEVEL="warning", TSPIPE_DATA_DIR=str(tmp_path / "data"),
                   TELESIGN_API_URL=fake.url, TELESIGN_CUSTOMER_ID="CUST", TELESIGN_API_KEY="S2V5LWZvci10aGUtdGVzdHMh",
                   TSPIPE_AUTOREPLIES=REPLIES)
        kill_while_applying(store.client, start_worker_process(env, log=tmp_path / "first.log"), timeout=60, after=0.3)
        before = len(fake.requests)
        applied_before = sum(int(v) for k, v in store.client.hgetall(keys.METRICS).items() if k.startswith(b"tspipe_events_total"))
        time.sleep(2.5)  # past the test worker's 2 s visibility timeout: the killed batch is restored
        second = start_worker_process(env, log=tmp_path / "second.log")
        try:
            # Generous: ~1,800 tasks on one solo worker, and the suite shares the machine (40 s alone at load 17).
            assert wait_for(lambda: settled(store.client), timeout=150)
            requeue_lost(store.client)
            assert wait_for(lambda: len(fake.requests) >= total and settled(store.client), timeout=150)
            time.sleep(0.5)
        finally:
            second.terminate()
            second.wait(10)
    per_phone = Counter(phone for phone, _ in replies(fake))
    print(f"\n[confirmations sigkill] stops={total} applied_before_kill={applied_before} "
          f"replies_before_kill={before} replies={len(fake.requests)} phones={len(per_phone)}")
    assert 0 < applied_before < total, "the kill must land mid-stream"
    assert len(per_phone) == total and set(per_phone.values()) == {1}
