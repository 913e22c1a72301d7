"""Found while building the fault tests: `tspipe worker` (the Procfile's worker) listened only on the
ingest queue, so webhooks enqueued on tspipe.dest.<name> were never delivered. A real `tspipe worker`
subprocess must deliver a fanned-out event to a local destination."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from aiohttp import web

from pipeline.record import INGEST_BATCH_TASK, Record, encode_batch
from tests.faults.support import unique_callbacks
from tests.workers.delivery_support import HttpServer, wait_for
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
        make_celery().send_task(INGEST_BATCH_TASK, args=[encode_batch([Record(b, time.time(), ch) for ch, b in callbacks])])
        env = dict(os.environ, TSPIPE_LOG_LEVEL="warning")
        worker = subprocess.Popen([TSPIPE, "worker", "--concurrency=1", "--pool=solo"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            delivered = wait_for(lambda: len(server.calls) >= len(callbacks), timeout=20)
        finally:
            worker.terminate()
            worker.wait(10)
    print(f"\n[fault tspipe-worker-queues] callbacks={len(callbacks)} webhook_posts={len(server.calls)}")
    assert delivered
