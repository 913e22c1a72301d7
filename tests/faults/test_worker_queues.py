"""Found while building the fault tests: `tspipe worker` (the Procfile's worker) listened only on the
ingest queue, so webhooks enqueued on tspipe.dest.<name> were never delivered. The Procfile's processes,
`tspipe worker` and `tspipe deliver` as real subprocesses, must deliver every fanned-out event, including
one still queued for Celery by the design before the delivery engine (drained into the engine)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import msgspec
from aiohttp import web

from pipeline.event import EVENT_ENCODER

from ingest.task_message import ingest_batch_message
from pipeline.record import INGEST_BATCH_TASK, Record, encode_batch
from tests.faults.support import unique_callbacks
from tests.workers.delivery_support import HttpServer, make_event, verify_all, wait_for
from tests.workers.test_delivery import SECRET, dest
from workers.app import make_celery

TSPIPE = str(Path(sys.executable).with_name("tspipe"))


async def ok(request: web.Request) -> web.Response:
    return web.Response(status=204)


def test_tspipe_worker_consumes_destination_queues(redis_url: str, tmp_path: Path, monkeypatch) -> None:
    with HttpServer(ok) as server:
        destinations = json.dumps([dest("hook", server)])
        monkeypatch.setenv("REDIS_URL", redis_url)
        monkeypatch.setenv("TSPIPE_DESTINATIONS", destinations)
        from config.settings import reset_settings_cache
        reset_settings_cache()
        callbacks = unique_callbacks(20)
        app = make_celery()
        app.send_task(INGEST_BATCH_TASK, args=[encode_batch([Record(b, time.time(), ch) for ch, b in callbacks])])
        legacy = msgspec.json.encode({**msgspec.json.decode(EVENT_ENCODER.encode(make_event(999))), "event_id": "legacy"})
        app.send_task("tspipe.deliver", args=("hook", legacy, 1, time.time()), queue="tspipe.dest.hook")
        env = dict(os.environ, TSPIPE_LOG_LEVEL="warning")
        worker = subprocess.Popen([TSPIPE, "worker", "--concurrency=1", "--pool=solo"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        engine = subprocess.Popen([TSPIPE, "deliver"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            delivered = wait_for(lambda: len(server.calls) >= len(callbacks) + 1, timeout=20)
        finally:
            for process in (worker, engine):
                process.terminate()
                process.wait(10)
    print(f"\n[fault tspipe-worker-queues] callbacks={len(callbacks)} webhook_posts={len(server.calls)}")
    assert delivered
    assert "legacy" in {h["webhook-id"] for h, _b, _t in server.calls}
    verify_all(SECRET, server.calls)
    assert engine.returncode == 0  # SIGTERM stops the engine cleanly


def test_beat_maintenance_runs_ahead_of_an_ingest_backlog(redis_url: str, tmp_path: Path, monkeypatch) -> None:
    """Beat's journal sweep, sent exactly as beat sends it, runs while hundreds of batches are still queued.

    On the ingest queue it waited behind the whole backlog and expired there ("Discarding revoked
    task: tspipe.journal_sweep"), so a batch lost in transit waited for the backlog it was part of.
    """
    import redis

    from store import journal, keys

    monkeypatch.setenv("REDIS_URL", redis_url)
    from config.settings import reset_settings_cache
    reset_settings_cache()
    app = make_celery()
    client = redis.Redis.from_url(redis_url)
    queue, backlog = "tspipe.ingest", 600
    enqueue = client.register_script(journal.ENQUEUE)
    pipe = client.pipeline(transaction=False)
    for channel, body in unique_callbacks(backlog):
        task_id = str(uuid.uuid4())
        message = ingest_batch_message(encode_batch([Record(body, time.time(), channel)]), queue, task_id)
        enqueue(journal.enqueue_keys(queue), journal.enqueue_args(task_id, message, 30.0), client=pipe)
    pipe.execute()
    # A batch the kombu gap lost: journalled and past due, in no queue. Only the sweep brings it back.
    lost_id = str(uuid.uuid4())
    lost = ingest_batch_message(encode_batch([Record(b"{}", time.time(), "sms")]), queue, lost_id)
    enqueue(journal.enqueue_keys(queue), journal.enqueue_args(lost_id, lost, 30.0, now=time.time() - 60))
    client.lrem(queue, 1, lost)
    assert client.llen(queue) == backlog

    log = tmp_path / "worker.log"
    env = dict(os.environ, TSPIPE_LOG_LEVEL="info", TSPIPE_LOG_FORMAT="console")
    with log.open("wb") as out:
        worker = subprocess.Popen([TSPIPE, "worker", "--concurrency=1", "--pool=solo"], env=env,
                                  stdout=out, stderr=subprocess.STDOUT)
        try:
            assert wait_for(lambda: client.llen(queue) < backlog - 5, timeout=60), "the worker applied nothing"
            entry = app.conf.beat_schedule["tspipe-journal-sweep"]
            app.send_task(entry["task"], **entry["options"])  # what beat does each period
            swept = wait_for(lambda: client.hexists(keys.JOURNAL_REQUEUES, lost_id), timeout=60)
            left = client.llen(queue)
        finally:
            worker.terminate()
            worker.wait(10)
    print(f"\n[fault maintenance-queue] backlog={backlog} queued_when_swept={left}")
    assert swept, log.read_text()[-2000:]
    assert left > backlog // 2, f"the sweep ran only when {left} of {backlog} batches were left"
    assert "Discarding revoked task" not in log.read_text()
