"""Delivery benchmark: the delivery engine (`tspipe deliver`) against the Celery design it replaced, same run.

The baseline is the tree of a git revision (default: the last commit before
the engine), extracted with `git archive` into a temporary folder and run from
there; both designs get the same driver (`workers.fanout.fan_out`, which both
trees have), the same local receivers (aiohttp, uvloop, in their own process)
and the same Redis.

Two figures per design:
1. throughput: with the deliverer warmed up, N webhooks fanned out as fast as
   the driver can for one destination; webhooks per second of wall time and
   per CPU second of the delivering processes (their user + system time,
   children included; the driver's fan-out is not counted). For the engine
   also `drain`: the N webhooks put on its queue in one script call, so no
   fan-out competes for the CPUs while it drains them;
2. lag: three destinations, events fanned out at a steady rate; the healthy
   destinations' lag (receipt at the receiver minus the event's received_at)
   p50/p99 with all three answering, then with one accepting connections and
   never answering (timeout 5 s, as in issue 14); the two conditions alternate
   for --rounds rounds and the medians are reported.

    python bench/delivery.py [--baseline-rev REV] [-n 6000] [--rate 200] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from proc_cpu import tree_cpu_seconds  # noqa: E402
from tests.faults.support import stop_processes  # noqa: E402

SECRET = "whsec_" + "dGVzdC1zZWNyZXQtMDEyMzQ1Njc4OQ=="  # base64 of b"test-secret-0123456789"
DEFAULT_BASELINE = "62e2839"


# --- receivers: their own process, so their CPU is not the deliverer's ---

def _receivers(ports: dict, hang: list[str], conn) -> None:
    import uvloop
    from aiohttp import web

    lags: dict[str, list[float]] = {name: [] for name in ports}

    def handler(name: str):
        async def handle(request: web.Request) -> web.Response:
            body = await request.read()
            if name in hang:
                await asyncio.sleep(3600)
            events = json.loads(body)
            for event in events if isinstance(events, list) else [events]:
                lags[name].append(time.time() - datetime.fromisoformat(event["received_at"]).timestamp())
            return web.Response(status=204)
        return handle

    async def main() -> None:
        runners = []
        for name in ports:
            app = web.Application()
            app.router.add_post("/{tail:.*}", handler(name))
            runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
            await site.start()
            ports[name] = site._server.sockets[0].getsockname()[1]
            runners.append(runner)
        conn.send(dict(ports))
        loop = asyncio.get_running_loop()
        while True:
            command = await loop.run_in_executor(None, conn.recv)
            if command == "counts":
                conn.send({name: len(v) for name, v in lags.items()})
            elif command == "lags":
                conn.send(lags)
                for values in lags.values():
                    values.clear()
            else:
                break
        for runner in runners:
            await runner.cleanup()

    uvloop.run(main())


class Receivers:
    def __init__(self, names: list[str], hang: list[str] = ()) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_receivers, args=({n: 0 for n in names}, list(hang), child), daemon=True)
        self.proc.start()
        self.ports = self.conn.recv()

    def ask(self, command: str):
        self.conn.send(command)
        return self.conn.recv()

    def close(self) -> None:
        self.conn.send("stop")
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.kill()


# --- the two designs ---

DRIVER = r"""
import sys, time
from tests.workers.delivery_support import make_event
from workers.app import get_app
from workers.fanout import fan_out
get_app()
total, rate, batch, start_at = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
begin = time.monotonic()
n = 0
while n < total:
    fan_out([make_event(start_at + n + i) for i in range(min(batch, total - n))])
    n += batch
    if rate > 0:
        time.sleep(max(0.0, begin + n / rate - time.monotonic()))
"""


class Design:
    def __init__(self, name: str, tree: Path, deliverer: list[str]) -> None:
        self.name, self.tree, self.deliverer = name, tree, deliverer

    def env(self, redis_url: str, destinations: list[dict], data: Path) -> dict[str, str]:
        return dict(os.environ, PYTHONPATH=str(self.tree), REDIS_URL=redis_url, TSPIPE_LOG_LEVEL="error",
                    TSPIPE_DESTINATIONS=json.dumps(destinations), TSPIPE_DATA_DIR=str(data))

    def drive(self, env: dict[str, str], total: int, rate: float, start_at: int, batch: int = 10) -> None:
        subprocess.run([sys.executable, "-c", DRIVER, str(total), str(rate), str(batch), str(start_at)],
                       env=env, cwd=self.tree, check=True)

    def start(self, env: dict[str, str]) -> subprocess.Popen:
        return subprocess.Popen(self.deliverer, env=env, cwd=self.tree, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)





def destinations(ports: dict, hang_timeout: float = 5.0) -> list[dict]:
    return [{"name": name, "url": f"http://127.0.0.1:{port}/hook", "secret": SECRET,
             "timeout": hang_timeout if name == "b" else 10, "max_attempts": 3, "circuit_threshold": 1000}
            for name, port in ports.items()]


def wait_until(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def throughput(design: Design, redis_url: str, data: Path, n: int) -> dict:
    import redis

    redis.Redis.from_url(redis_url).flushall()
    receivers = Receivers(["a"])
    try:
        env = design.env(redis_url, destinations(receivers.ports), data)
        process = design.start(env)
        design.drive(env, 20, 0, 10_000_000)  # warm up: started, imported, connected
        wait_until(lambda: receivers.ask("counts")["a"] >= 20, timeout=60)
        cpu_before = tree_cpu_seconds(process.pid)
        started = time.monotonic()
        design.drive(env, n, 0, 0, batch=100)
        done = wait_until(lambda: receivers.ask("counts")["a"] >= n + 20, timeout=600)
        wall = time.monotonic() - started
        cpu = tree_cpu_seconds(process.pid) - cpu_before
        stop_processes(process)
        assert done, f"{design.name}: not every webhook arrived"
    finally:
        receivers.close()
    return {"webhooks": n, "wall_s": round(wall, 2), "per_s": round(n / wall), "cpu_s": round(cpu, 2),
            "per_cpu_s": round(n / cpu)}


def drain(design: Design, redis_url: str, data: Path, n: int) -> dict:
    """Engine only: N webhooks put on the destination's queue in one script call, then drained.

    What the engine itself costs per webhook, with no fan-out running beside it on the same CPUs.
    """
    import redis

    from pipeline.event import EVENT_ENCODER
    from store import delivery_queue
    from tests.workers.delivery_support import make_event

    client = redis.Redis.from_url(redis_url)
    client.flushall()
    receivers = Receivers(["a"])
    try:
        env = design.env(redis_url, destinations(receivers.ports), data)
        process = design.start(env)
        design.drive(env, 20, 0, 10_000_000)
        wait_until(lambda: receivers.ask("counts")["a"] >= 20, timeout=60)
        jobs = [delivery_queue.new_job(EVENT_ENCODER.encode(make_event(i))) for i in range(n)]
        cpu_before = tree_cpu_seconds(process.pid)
        started = time.monotonic()
        delivery_queue.enqueue(client, [("a", n + 1, jobs)])
        done = wait_until(lambda: receivers.ask("counts")["a"] >= n + 20, timeout=600)
        wall = time.monotonic() - started
        cpu = tree_cpu_seconds(process.pid) - cpu_before
        stop_processes(process)
        assert done, "not every webhook arrived"
    finally:
        receivers.close()
    return {"webhooks": n, "wall_s": round(wall, 2), "per_s": round(n / wall), "cpu_s": round(cpu, 2),
            "per_cpu_s": round(n / cpu)}


def lag(design: Design, redis_url: str, data: Path, rate: float, seconds: float, hang: bool) -> dict:
    import redis

    redis.Redis.from_url(redis_url).flushall()
    receivers = Receivers(["a", "b", "c"], hang=["b"] if hang else [])
    try:
        env = design.env(redis_url, destinations(receivers.ports), data)
        process = design.start(env)
        design.drive(env, 30, 0, 10_000_000)  # warm up: the deliverer is up and connected
        wait_until(lambda: receivers.ask("counts")["a"] >= 30, timeout=60)
        receivers.ask("lags")
        total = int(rate * seconds)
        design.drive(env, total, rate, 0)
        done = wait_until(lambda: min(receivers.ask("counts")[k] for k in ("a", "c")) >= total, timeout=120)
        lags = receivers.ask("lags")
        stop_processes(process)
    finally:
        receivers.close()
    healthy = sorted(lags["a"] + lags["c"])
    quantiles = statistics.quantiles(healthy, n=100)
    return {"hanging": hang, "healthy_posts": len(healthy), "complete": done,
            "p50_ms": round(quantiles[49] * 1000, 1), "p99_ms": round(quantiles[98] * 1000, 1)}


def _median_run(runs: list[dict]) -> dict:
    """The runs' median p50 and p99, with every run's p99 kept to show the spread."""
    return {"hanging": runs[0]["hanging"], "runs": len(runs), "complete": all(r["complete"] for r in runs),
            "p50_ms": statistics.median(r["p50_ms"] for r in runs), "p99_ms": statistics.median(r["p99_ms"] for r in runs),
            "p99_ms_each": [r["p99_ms"] for r in runs]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline-rev", default=DEFAULT_BASELINE, help="git revision of today's (Celery) design")
    parser.add_argument("-n", type=int, default=6000, help="webhooks for the throughput run")
    parser.add_argument("--rate", type=float, default=200.0, help="events per second fanned out in the lag runs")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each lag run")
    parser.add_argument("--rounds", type=int, default=3, help="lag runs per condition, alternating (medians reported)")
    parser.add_argument("--only", choices=["engine", "celery"], help="run one design only")
    args = parser.parse_args()

    from tspipe.redis_server import RedisServer

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        baseline = tmp_path / "baseline"
        baseline.mkdir()
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.baseline_rev], check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", str(baseline)], input=archive.stdout, check=True)
        designs = [
            Design("engine", ROOT, [sys.executable, "-m", "tspipe", "deliver"]),
            # Today's design: the Procfile's `tspipe worker` (two processes) delivers from tspipe.dest.<name>.
            Design("celery", baseline, [sys.executable, "-m", "tspipe", "worker", "--concurrency=2", "--loglevel=error"]),
        ]
        designs = [d for d in designs if args.only in (None, d.name)]
        server = RedisServer(tmp_path / "redis", appendonly=False).start()
        results: dict[str, dict] = {}
        try:
            for design in designs:
                data = tmp_path / f"data-{design.name}"
                runs: dict[bool, list[dict]] = {False: [], True: []}
                # The Celery design with a hanging destination takes minutes per run: one round of it.
                for _ in range(args.rounds if design.name == "engine" else 1):
                    for hang in (False, True):
                        runs[hang].append(lag(design, server.url, data, args.rate, args.seconds, hang=hang))
                results[design.name] = {
                    "throughput": throughput(design, server.url, data, args.n if design.name == "engine" else args.n // 3),
                    **({"drain": drain(design, server.url, data, args.n)} if design.name == "engine" else {}),
                    "lag_none_hanging": _median_run(runs[False]),
                    "lag_one_hanging": _median_run(runs[True]),
                }
                print(design.name, json.dumps(results[design.name]), flush=True)
        finally:
            server.stop()
    for name, result in results.items():
        none, one = result["lag_none_hanging"], result["lag_one_hanging"]
        drained = f", {result['drain']['per_cpu_s']} draining a filled queue" if "drain" in result else ""
        print(f"{name:>7}: {result['throughput']['per_cpu_s']:>6} webhooks per CPU second{drained} "
              f"({result['throughput']['per_s']} /s wall); healthy lag p99 {none['p99_ms']} ms with none hanging, "
              f"{one['p99_ms']} ms with one hanging ({one['p99_ms'] / max(none['p99_ms'], 0.1):.2f}x)")
    if len(results) == 2:
        ratio = results["engine"]["throughput"]["per_cpu_s"] / results["celery"]["throughput"]["per_cpu_s"]
        print(f"engine / celery webhooks per CPU second: {ratio:.1f}x")


if __name__ == "__main__":
    main()
