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
from pathlib import Path

import msgspec
from aiohttp import web

from pipeline.event import EVENT_ENCODER

from pipeline.record import INGEST_BATCH_TASK, Record, encode_batch
from tests.faults.support import unique_callbacks
from tests.workers.delivery_support import HttpServer, make_event, wait_for
from tests.workers.test_delivery import dest
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
    assert engine.returncode == 0  # SIGTERM stops the engine cleanly
