"""Issue 7b: a real Celery worker subprocess SIGKILLed with batches in flight, then restarted.
Late acks redeliver the killed batch; the store's dedup must make every callback count exactly once
(dedup keys, METRICS counters, history lengths) and the destination must not see a second delivery
of any webhook-id it already accepted... beyond what webhook-id dedup absorbs (we report both)."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections import Counter

import redis

import pipeline
from aiohttp import web

from pipeline.record import Record
from tests.faults.support import reference_id, unique_callbacks
from tests.workers.delivery_support import HttpServer, delivery_engine, destinations_env, verify_all, wait_for
from tests.workers.journal_support import enqueue, kill_while_applying, requeue_lost, settled, start_worker_process
from tests.workers.test_delivery import SECRET, dest
from store import keys, message
from tests.conftest import REPO_ROOT

N_BATCHES, PER_BATCH = 24, 250  # enough that the faster apply path is still mid-stream at the kill


async def ok(request: web.Request) -> web.Response:
    return web.Response(status=204)


def test_sigkill_worker_with_destination_exactly_once(redis_url: str, tmp_path, monkeypatch) -> None:
    client = redis.Redis.from_url(redis_url)
    with HttpServer(ok) as server, contextlib.ExitStack() as stack:
        destinations_env(monkeypatch, redis_url, [dest("hook", server, filter={"final_only": True})])
        stack.enter_context(delivery_engine())
        destinations = json.dumps([dest("hook", server, filter={"final_only": True})])
        env = dict(os.environ, PYTHONPATH=REPO_ROOT, REDIS_URL=redis_url, TSPIPE_DESTINATIONS=destinations,
                   TSPIPE_LOG_LEVEL="warning", TSPIPE_DATA_DIR=str(tmp_path / "data"))
        callbacks = unique_callbacks(N_BATCHES * PER_BATCH)
        for b in range(N_BATCHES):
            chunk = callbacks[b * PER_BATCH:(b + 1) * PER_BATCH]
            enqueue(client, [Record(body, time.time(), ch) for ch, body in chunk])  # journalled, as the ingress does
        total = len(callbacks)
        refs = Counter(reference_id(body) for _ch, body in callbacks)
        finals = sum(1 for ch, body in callbacks if pipeline.decode(body, channel_hint=ch).status.final)
        kill_while_applying(client, start_worker_process(env), timeout=60, after=0.05)
        done_before = message.count(client)
        time.sleep(2.5)  # past the 2 s visibility timeout: the killed batch is restored
        second = start_worker_process(env)
        try:
            # A kill between kombu's BRPOP and its bookkeeping loses the message from the queue;
            # the journal sweep (run now instead of after its grace period) queues it again.
            assert wait_for(lambda: settled(client), timeout=40)
            requeued = requeue_lost(client)
            assert wait_for(lambda: message.count(client) >= total, timeout=40)
            wait_for(lambda: len({h["webhook-id"] for h, _b, _t in server.calls}) >= finals, timeout=60)
            time.sleep(0.3)
        finally:
            second.terminate()
            second.wait(10)
        calls = list(server.calls)
    dedup = message.count(client)
    metrics = {k.decode(): int(v) for k, v in client.hgetall(keys.METRICS).items()
               if k.startswith(b"tspipe_events_total")}
    applied = sum(metrics.values())
    history_lengths = Counter(message.history_lengths(client, list(refs)))
    ids = Counter(h["webhook-id"] for h, _b, _t in calls)
    dup_posts = sum(n - 1 for n in ids.values())
    print(f"\n[fault worker-sigkill] callbacks={total} done_before_kill={done_before} requeued={requeued} messages={dedup} "
          f"events_total={applied} lost={total - applied} duplicated={max(0, applied - total)} "
          f"history_len_counts={dict(history_lengths)} final_events={finals} webhook_posts={len(calls)} distinct_webhook_ids={len(ids)} "
          f"duplicate_posts={dup_posts} "
          f"lost_deliveries={finals - len(ids)}")
    assert 0 < done_before < total, "the kill must land mid-stream"
    assert dedup == total and applied == total
    assert set(history_lengths) == {1}
    # Before the dedup key doubled as an outbox flag, a kill between apply and fan-out lost ~90-200 deliveries here.
    assert len(ids) == finals  # each final event delivered; repeats (if any) share a webhook-id
    verify_all(SECRET, calls)
    client.close()
