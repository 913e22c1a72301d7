"""Workers benchmark: batch task (one Lua call per batch) vs naive one-task-per-callback, same run.

Fills the queue with N mixed fixture bodies (unique reference ids), then
times how long one solo-pool worker takes to drain it, for the real batch
task and for a naive task that decodes one callback and applies it with its
own store call. Prints events/s for both and the ratio.

    python bench/workers.py [-n 20000] [--naive-n 4000] [--batch 500]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

NAIVE_TASK = "bench.naive_callback"
METRIC_PREFIX = "tspipe_events_total"


def run_worker() -> None:
    """Worker process: the real app plus the naive per-callback task."""
    import pipeline
    from workers import tasks
    from workers.app import get_app

    app = get_app()

    @app.task(name=NAIVE_TASK, acks_late=True)
    def naive_callback(body: bytes, received_at: float) -> None:
        event = pipeline.decode(body, received_at=datetime.fromtimestamp(received_at, tz=timezone.utc))
        tasks.get_store().apply_batch([event])

    app.worker_main(["worker", "--pool=solo", "--loglevel=error", "--without-heartbeat",
                     "--without-gossip", "--without-mingle"])


def bodies(n: int) -> list[bytes]:
    from tests.conftest import fixture_bodies

    templates = [json.loads(b) for b in fixture_bodies().values()]
    out = []
    for i in range(n):
        data = dict(templates[i % len(templates)])
        data["reference_id"] = f"BENCH{i:012d}"
        out.append(json.dumps(data).encode())
    return out


def applied(client) -> int:
    from store import keys

    values = client.hgetall(keys.METRICS)
    return sum(int(v) for k, v in values.items() if k.startswith(METRIC_PREFIX.encode()))


def drain(client, env: dict, expected: int) -> float:
    """Start a worker on the filled queue; time from its first applied event to the last."""
    worker = subprocess.Popen([sys.executable, __file__, "--worker"], env=env, cwd=ROOT)
    try:
        while applied(client) == 0:
            time.sleep(0.002)
        start = time.perf_counter()
        first = applied(client)
        while applied(client) < expected:
            time.sleep(0.005)
        return (expected - first) / (time.perf_counter() - start)
    finally:
        worker.terminate()
        worker.wait(20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=20000, help="callbacks for the batch pipeline")
    parser.add_argument("--naive-n", type=int, default=4000, help="callbacks for the naive pipeline")
    parser.add_argument("--batch", type=int, default=500, help="records per batch message")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        run_worker()
        return

    import redis

    from tspipe.redis_server import RedisServer

    with tempfile.TemporaryDirectory() as tmp, RedisServer(tmp, appendonly=False) as server:
        env = dict(os.environ, REDIS_URL=server.url, PYTHONPATH=str(ROOT))
        os.environ["REDIS_URL"] = server.url
        from pipeline.record import INGEST_BATCH_TASK, Record, encode_batch
        from workers.app import get_app

        app = get_app()

        client = redis.Redis.from_url(server.url)
        now = time.time()

        data = bodies(args.n)
        for i in range(0, len(data), args.batch):
            records = [Record(b, now) for b in data[i:i + args.batch]]
            app.send_task(INGEST_BATCH_TASK, args=[encode_batch(records)])
        batch_rate = drain(client, env, args.n)

        client.flushall()
        for b in bodies(args.naive_n):
            app.send_task(NAIVE_TASK, args=[b, now])
        naive_rate = drain(client, env, args.naive_n)

    print(f"one solo-pool worker; {os.cpu_count()} CPUs")
    print(f"batch task ({args.batch}/message, {args.n} callbacks): {batch_rate:,.0f} events/s")
    print(f"naive one-task-per-callback ({args.naive_n} callbacks): {naive_rate:,.0f} events/s")
    print(f"ratio: {batch_rate / naive_rate:.1f}x")


if __name__ == "__main__":
    main()
