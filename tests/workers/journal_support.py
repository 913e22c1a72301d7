"""Queue batches the way the ingress does (journalled), kill a worker mid-stream, recover what it lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import redis

from ingest.task_message import ingest_batch_message
from pipeline.record import Record, encode_batch
from store import journal, keys
from tests.conftest import REPO_ROOT

QUEUE = "tspipe.ingest"
# The real app with a 2 s visibility timeout, so a killed worker's batch comes back quickly.
WORKER_CMD = [sys.executable, "-m", "tests.workers.run_worker"]


def enqueue(client: redis.Redis, records: list[Record], queue: str = QUEUE) -> str:
    """One batch queued and journalled in one script call, as ingest/publisher.py does; returns its task id."""
    task_id = str(uuid.uuid4())
    journal.enqueue(client, queue, task_id, ingest_batch_message(encode_batch(records), queue, task_id), 30.0)
    return task_id


def settled(client: redis.Redis, queue: str = QUEUE) -> bool:
    """Nothing queued and nothing held by a worker."""
    return client.llen(queue) == 0 and client.hlen(keys.KOMBU_UNACKED) == 0


def requeue_lost(client: redis.Redis, queue: str = QUEUE) -> int:
    """What the beat sweep does after its grace period, now: queue again every batch lost in transit."""
    return journal.Sweep(client, queue, grace=30).run(now=time.time() + 3600)[0]


def start_worker_process(env: dict[str, str], log: Path | None = None) -> subprocess.Popen[bytes]:
    """A worker subprocess; its output goes to `log` when given (kept for a failing run), else nowhere."""
    out = log.open("wb") if log is not None else subprocess.DEVNULL
    python_path = os.pathsep.join(p for p in (REPO_ROOT, env.get("PYTHONPATH")) if p)
    return subprocess.Popen(WORKER_CMD, env={**env, "PYTHONPATH": python_path}, stdout=out, stderr=subprocess.STDOUT)


def kill_while_applying(client: redis.Redis, worker: subprocess.Popen[bytes], timeout: float, after: float) -> None:
    """SIGKILL `worker` `after` seconds past its first applied event (AssertionError if none in `timeout`)."""
    try:
        deadline = time.monotonic() + timeout
        while client.llen(keys.RECENT_EVENTS) == 0:
            if time.monotonic() > deadline:
                raise AssertionError(f"the worker applied nothing in {timeout:.0f}s")
            time.sleep(0.05)
        time.sleep(after)
        worker.send_signal(signal.SIGKILL)
        worker.wait(5)
    finally:
        if worker.poll() is None:
            worker.kill()
