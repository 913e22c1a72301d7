"""Whole-stack benchmark: real Redis + `tspipe web` + `tspipe worker` subprocesses on 127.0.0.1.

Drives signed callbacks of every bundled sample shape (each with its own reference id) at --rate for
--duration, with wrk when it is installed (open loop, paced by bench/wrk_paced.lua; the bodies are
signed beforehand) or else a bounded aiohttp client, then checks that every acknowledged callback reached the
state store exactly once (one history entry per reference id) and prints: achieved rate, ack
p50/p99, receive->state lag p50/p99 (from the METRICS lag histogram, so bucket bounds), lost and
duplicated counts, peak RSS per process. --fuzz-count N additionally posts N fuzzed bodies
(tests/faults/fuzz.py) and checks that none gets a 5xx and every one is applied or quarantined.
--archive adds an embedded PostgreSQL and `tspipe archive`, and prints the archive's lag
(received -> committed, from its histogram), missing and doubled events in the archive,
PostgreSQL bytes per event and the archive writer's CPU per event.

    .venv/bin/python bench/stack.py --rate 5000 --duration 60
    .venv/bin/python bench/stack.py --duration 10 --fuzz-count 100000
    .venv/bin/python bench/stack.py --rate 5000 --duration 60 --archive
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import aiohttp
import psutil
import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.signature import decode_api_key, sign  # noqa: E402
from tests.faults.support import reference_id, stop_processes, unique_callbacks  # noqa: E402
from tspipe.redis_server import RedisServer, free_port  # noqa: E402
from store import keys, message  # noqa: E402
from store.state import LAG_BUCKETS  # noqa: E402

API_KEY = "EXAMPLE----TE8sTgg45yusumoN6BYsBVkh+yRJ5czgsnCehZaOYldPJdmFh6NeX8kunZ2zU1YWaUw/0wV6xfw=="
CUSTOMER_ID = "BENCH"
TSPIPE = str(Path(sys.executable).with_name("tspipe"))
KEY = decode_api_key(API_KEY)


class PeakRSS:
    """Samples the RSS of each process (children included) every 0.2 s; keeps the peak."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.peak: dict[str, int] = dict.fromkeys(pids, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for name, pid in self.pids.items():
                try:
                    proc = psutil.Process(pid)
                    rss = proc.memory_info().rss + sum(c.memory_info().rss for c in proc.children(recursive=True))
                    self.peak[name] = max(self.peak[name], rss)
                except psutil.Error:
                    pass
            self._stop.wait(0.2)

    def cpu_seconds(self) -> dict[str, float]:
        """User + system CPU so far of each process and its children."""
        out = {}
        for name, pid in self.pids.items():
            try:
                proc = psutil.Process(pid)
                procs = [proc, *proc.children(recursive=True)]
                out[name] = sum(sum(p.cpu_times()[:2]) for p in procs)
            except psutil.Error:
                out[name] = float("nan")
        return out

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


def lag_percentiles(client: redis.Redis, name: str = "tspipe_processing_lag_seconds",
                    buckets: tuple[float, ...] = LAG_BUCKETS) -> tuple[str, str]:
    """p50/p99 of received->applied from the cumulative histogram: the upper bound of the bucket."""
    LAG_BUCKETS = buckets  # noqa: N806 - the histogram's own bounds
    metrics = {k.decode(): float(v) for k, v in client.hgetall(keys.METRICS).items()}
    total = metrics.get(f"{name}_count", 0)
    if not total:
        return "n/a", "n/a"
    out = []
    for p in (0.5, 0.99):
        bound = "+Inf"
        for le in LAG_BUCKETS:
            label = f"{name}_bucket{{le=\"{le}\"}}"
            if metrics.get(label, metrics.get(f"{name}_bucket{{le=\"{le:g}\"}}", 0)) >= p * total:
                bound = f"{le:g}"
                break
        out.append(f"<={bound}s")
    mean = metrics.get(f"{name}_sum", 0) / total
    def share(le: float) -> float:
        count = metrics.get(f'{name}_bucket{{le="{le:g}"}}', metrics.get(f'{name}_bucket{{le="{le}"}}', 0))
        return count / total

    spread = ", ".join(f"<={le:g}s {share(le):.2%}" for le in LAG_BUCKETS[:8])
    return out[0] + f" (mean {mean * 1000:.0f}ms; cumulative {spread})", out[1]


async def drive(base: str, items: list[tuple[str, bytes]], rate: float, concurrency: int):
    """Open-loop schedule (item i is due at start + i/rate) with at most `concurrency` in flight."""
    statuses: Counter = Counter()
    acked: list[bytes] = []
    latencies: list[float] = []
    next_index = 0
    start = time.monotonic()
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:

        async def sender() -> None:
            nonlocal next_index
            while next_index < len(items):
                i = next_index
                next_index += 1
                due = start + i / rate
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                channel, body = items[i]
                headers = {"Authorization": f"TSA {CUSTOMER_ID}:{sign(KEY, body)}",
                           "Content-Type": "application/json"}
                t = time.monotonic()
                try:
                    async with session.post(f"{base}/callbacks/{channel}", data=body, headers=headers) as r:
                        await r.read()
                        statuses[r.status] += 1
                        if r.status == 200:
                            acked.append(body)
                            latencies.append(time.monotonic() - t)
                except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                    statuses[type(exc).__name__] += 1

        await asyncio.gather(*(sender() for _ in range(concurrency)))
    return statuses, acked, latencies, time.monotonic() - start


def write_requests(path: Path, items: list[tuple[str, bytes]], port: int) -> None:
    """The raw signed HTTP requests for wrk_paced.lua: a length line, then the request, for each."""
    with path.open("wb") as out:
        for channel, body in items:
            request = (
                f"POST /callbacks/{channel} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                f"Authorization: TSA {CUSTOMER_ID}:{sign(KEY, body)}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode() + body
            out.write(b"%d\n" % len(request))
            out.write(request)


def drive_wrk(base: str, port: int, items: list[tuple[str, bytes]], rate: float, duration: float,
              connections: int, workdir: Path) -> dict[str, float]:
    """Run wrk at `rate` for `duration`; returns its counts and latency percentiles (ms)."""
    requests_file = workdir / "requests.bin"
    write_requests(requests_file, items, port)
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{int(duration)}s", "--timeout", "30s",
         "-s", str(ROOT / "bench" / "wrk_paced.lua"), base, "--", str(requests_file), str(rate)],
        capture_output=True, text=True, check=True,
    ).stdout
    line = re.search(r"^TSPIPE (.*)$", out, re.M)
    if line is None:
        raise SystemExit(f"wrk printed no summary:\n{out}")
    figures = {k: float(v) for k, v in (pair.split("=") for pair in line.group(1).split())}
    requests_file.unlink()
    return figures


def check_exactly_once(client: redis.Redis, items: list[tuple[str, bytes]], acked: int, in_flight: int) -> tuple[int, int]:
    """(lost, duplicated) for wrk's run: it sends items in order but reports only counts.

    The `acked` answered requests are among the first acked + in_flight items (the rest were still in
    flight when wrk stopped; the server may or may not have stored those, both are fine). Lost: fewer
    than `acked` of those are in the store. Duplicated: any history longer than one entry.
    """
    window = items[: acked + in_flight]
    lengths = message.history_lengths(client, [reference_id(body) for _channel, body in window])
    found = sum(1 for n in lengths if n > 0)
    duplicated = sum(n - 1 for n in lengths if n > 1)
    return max(0, acked - found), duplicated


def start_archive(tmp: Path, env: dict[str, str]):
    """An embedded PostgreSQL (data under tmp) and a `tspipe archive` writer; sets DATABASE_URL in env."""
    from archive.embedded import database_url, start

    home = tmp / "pg"
    home.mkdir()
    home.chmod(0o755)
    tmp.chmod(0o755)
    server = start(home / "data")
    env["DATABASE_URL"] = database_url(server)
    return server


def archive_report(client: redis.Redis, url: str, items: list[tuple[str, bytes]], timeout: float) -> tuple[list[str], int]:
    """Wait for the archive's backlog to empty, then compare the archive with what the workers applied."""
    import psycopg

    from pipeline import event_id_for
    from store.archive_backlog import Backlog
    from workers.archiver import LAG, LAG_BUCKETS as ARCHIVE_BUCKETS

    backlog = Backlog(client)
    start = time.monotonic()
    while backlog.size()[0] and time.monotonic() - start < timeout:
        time.sleep(0.1)
    drained = time.monotonic() - start
    lengths = message.history_lengths(client, [reference_id(body) for _channel, body in items])
    applied = {event_id_for(body) for (_c, body), n in zip(items, lengths) if n > 0}
    with psycopg.connect(url) as conn:
        counts = dict(conn.execute("SELECT event_id, count(*) FROM events GROUP BY event_id").fetchall())
        size = conn.execute("SELECT sum(pg_total_relation_size(inhrelid)), sum(pg_indexes_size(inhrelid)) "
                            "FROM pg_inherits WHERE inhparent = 'events'::regclass").fetchone()
    rows = sum(counts.values())
    missing = len(applied - set(counts))
    doubled = sum(n - 1 for n in counts.values() if n > 1)
    lag50, lag99 = lag_percentiles(client, LAG, ARCHIVE_BUCKETS)
    return [
        f"archive: {rows} rows, missing={missing} doubled={doubled} (of {len(applied)} applied); backlog empty "
        f"{drained:.1f}s after the queue",
        f"archive lag (received -> committed) p50{lag50} p99{lag99}",
        f"archive size: {int(size[0]) / max(rows, 1):.0f} bytes per event in PostgreSQL (indexes "
        f"{int(size[1]) / max(rows, 1):.0f})",
    ], rows


def ingress_batches(base: str) -> str:
    """Queue messages written by the ingress and records per message, from its /metrics."""
    import urllib.request

    with urllib.request.urlopen(base + "/metrics", timeout=5) as r:
        text = r.read().decode()
    count = re.search(r"^tspipe_ingest_batch_size_count (\S+)$", text, re.M)
    total = re.search(r"^tspipe_ingest_batch_size_sum (\S+)$", text, re.M)
    if not count or not float(count.group(1)):
        return "ingress batches: n/a"
    n, records = float(count.group(1)), float(total.group(1))
    return f"ingress batches: {n:.0f} queue messages, {records / n:.1f} callbacks per message on average"


def wait_healthy(base: str, procs: list[subprocess.Popen], path: str = "/healthz", method: str = "GET") -> None:
    import urllib.request

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for p in procs:
            if p.poll() is not None:
                raise SystemExit(f"a tspipe process exited early ({p.args})")
        try:
            request = urllib.request.Request(base + path, data=b"{}" if method == "POST" else None, method=method)
            with urllib.request.urlopen(request, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("tspipe web did not become healthy")


def wait_drained(client: redis.Redis, queue: str, expected: int, timeout: float) -> float:
    """Until the queue is empty and `expected` events were applied or quarantined; returns the wait."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        metrics = {k.decode(): int(float(v)) for k, v in client.hgetall(keys.METRICS).items()}
        done = (sum(v for k, v in metrics.items() if k.startswith("tspipe_events_total"))
                + metrics.get("tspipe_dedup_hits_total", 0) + metrics.get("tspipe_quarantined_total", 0))
        if client.llen(queue) == 0 and done >= expected:
            return time.monotonic() - start
        time.sleep(0.1)
    return float("inf")


def start_processes(tmp: Path, server: RedisServer, worker_concurrency: int):
    """`tspipe web` and `tspipe worker` against `server`, logging under `tmp`: (port, web, worker, logs)."""
    port = free_port()
    env = dict(os.environ, REDIS_URL=server.url, PORT=str(port), TSPIPE_HOST="127.0.0.1",
               TSPIPE_DATA_DIR=str(tmp / "data"), TELESIGN_API_KEY=API_KEY, TELESIGN_CUSTOMER_ID=CUSTOMER_ID,
               TSPIPE_LOG_LEVEL="warning", TSPIPE_LOG_FORMAT="json", PYTHONPATH=str(ROOT))
    logs = (tmp / "web.log").open("wb"), (tmp / "worker.log").open("wb")
    web = subprocess.Popen([TSPIPE, "web"], env=env, stdout=logs[0], stderr=subprocess.STDOUT)
    worker = subprocess.Popen([TSPIPE, "worker", f"--concurrency={worker_concurrency}"], env=env,
                              stdout=logs[1], stderr=subprocess.STDOUT)
    return port, web, worker, logs


def stop_all(procs, logs) -> None:
    stop_processes(*procs)
    for f in logs:
        f.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=5000.0, help="target callbacks per second")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load (10 s is fine)")
    parser.add_argument("--concurrency", type=int, default=64, help="most requests in flight (wrk connections)")
    parser.add_argument("--worker-concurrency", type=int, default=2)
    parser.add_argument("--fuzz-count", type=int, default=0, help="also post this many fuzzed bodies")
    parser.add_argument("--archive", action="store_true", help="also run the PostgreSQL archive and report on it")
    parser.add_argument("--generator", choices=("auto", "wrk", "aiohttp"), default="auto",
                        help="load generator: wrk (auto when installed) or the Python aiohttp client")
    parser.add_argument("--no-bare", action="store_true",
                        help="skip the bare aiohttp handler run that CPU per callback is compared with")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="tspipe-bench-"))
    server = RedisServer(tmp / "redis", appendonly=True).start()
    port = free_port()
    env = dict(os.environ, REDIS_URL=server.url, PORT=str(port), TSPIPE_HOST="127.0.0.1",
               TSPIPE_DATA_DIR=str(tmp / "data"), TELESIGN_API_KEY=API_KEY, TELESIGN_CUSTOMER_ID=CUSTOMER_ID,
               TSPIPE_LOG_LEVEL="warning", TSPIPE_LOG_FORMAT="json", PYTHONPATH=str(ROOT))
    postgres = start_archive(tmp, env) if args.archive else None
    logs = (tmp / "web.log").open("wb"), (tmp / "worker.log").open("wb"), (tmp / "archive.log").open("wb")
    web = subprocess.Popen([TSPIPE, "web"], env=env, stdout=logs[0], stderr=subprocess.STDOUT)
    worker = subprocess.Popen([TSPIPE, "worker", f"--concurrency={args.worker_concurrency}"], env=env,
                              stdout=logs[1], stderr=subprocess.STDOUT)
    archiver = (subprocess.Popen([TSPIPE, "archive"], env=env, stdout=logs[2], stderr=subprocess.STDOUT)
                if args.archive else None)
    pids = {"redis": server.process.pid, "web": web.pid, "worker": worker.pid}
    if archiver is not None:
        pids.update(archive=archiver.pid, postgres=postgres.get_pid())
    base = f"http://127.0.0.1:{port}"
    client = redis.Redis.from_url(server.url)
    acked, cpu_used = 0, {}
    try:
        wait_healthy(base, [web, worker])
        use_wrk = args.generator == "wrk" or (args.generator == "auto" and shutil.which("wrk") is not None)
        # wrk may run a little past --duration: give it spare bodies, each still unique.
        count = int(args.rate * args.duration * (1.1 if use_wrk else 1.0)) + (1000 if use_wrk else 0)
        items = unique_callbacks(count)
        print(f"tspipe bench/stack.py: {args.rate:g}/s for {args.duration:g}s with {'wrk -t1' if use_wrk else 'aiohttp'}, "
              f"concurrency {args.concurrency}, worker concurrency {args.worker_concurrency}, "
              f"{os.cpu_count()} CPUs shared by everything, logs in {tmp}")
        with PeakRSS(pids) as rss:
            cpu_before = rss.cpu_seconds()
            if use_wrk:
                figures = drive_wrk(base, port, items, args.rate, args.duration, args.concurrency, tmp)
                elapsed = figures["duration_us"] / 1e6
                acked = int(figures["requests"] - figures["status_errors"])
                errors = {k: int(figures[k]) for k in ("status_errors", "connect", "read", "write", "timeout")}
                ack_line = f"ack p50={figures['p50_us'] / 1000:.1f}ms p99={figures['p99_us'] / 1000:.1f}ms (wrk)"
                sent_line = f"answered={int(figures['requests'])} errors={errors} elapsed={elapsed:.1f}s"
            else:
                statuses, acked_bodies, latencies, elapsed = asyncio.run(
                    drive(base, items, args.rate, args.concurrency))
                acked = len(acked_bodies)
                ack_line = f"ack p50={pct(latencies, 0.5) * 1000:.1f}ms p99={pct(latencies, 0.99) * 1000:.1f}ms"
                sent_line = f"sent={sum(statuses.values())} statuses={dict(statuses)} elapsed={elapsed:.1f}s"
            drain = wait_drained(client, "tspipe.ingest", acked, timeout=max(60, args.duration * 3))
            archive_lines = []
            if archiver is not None:
                archive_lines, rows = archive_report(client, env["DATABASE_URL"], items, timeout=max(60, args.duration))
                spent = rss.cpu_seconds()
                writer, pg = spent["archive"] - cpu_before["archive"], spent["postgres"] - cpu_before["postgres"]
                archive_lines.append(f"archive writer CPU {writer * 1e6 / max(rows, 1):.1f} us per event "
                                     f"({writer:.1f}s); PostgreSQL CPU {pg * 1e6 / max(rows, 1):.1f} us per event")
            cpu_used = {k: v - cpu_before[k] for k, v in rss.cpu_seconds().items()}
            cpu = {k: v / (elapsed + drain) for k, v in cpu_used.items()}
            fuzz_line = None
            if args.fuzz_count:
                fuzz_line = run_fuzz(base, client, args.fuzz_count, args.concurrency)
        if use_wrk:
            if figures["status_errors"]:
                print(f"warning: {int(figures['status_errors'])} non-200 answers; wrk does not say which, "
                      "so lost is counted against all answered requests")
            lost, duplicated = check_exactly_once(client, items, int(figures["requests"]), args.concurrency)
        else:
            lengths = Counter(message.history_lengths(client, [reference_id(body) for body in acked_bodies]))
            lost = lengths.get(0, 0)
            duplicated = sum(n * (length - 1) for length, n in lengths.items() if length > 1)
        lag50, lag99 = lag_percentiles(client)
        batch_line = ingress_batches(base)
        print(f"{sent_line} achieved={acked / elapsed:.0f}/s acknowledged")
        print(ack_line)
        print(f"receive->state lag p50{lag50} p99{lag99}; queue drained {drain:.1f}s after the last request")
        print(f"lost={lost} duplicated={duplicated} (of {acked} acknowledged)")
        print(batch_line)
        print("peak RSS: " + " ".join(f"{k}={v / 2**20:.0f}MiB" for k, v in rss.peak.items()))
        print("CPU used (cores, averaged over the run): " + " ".join(f"{k}={v:.2f}" for k, v in cpu.items()))
        if fuzz_line:
            print(fuzz_line)
        for line in archive_lines:
            print(line)
    finally:
        stop_all([p for p in (web, worker, archiver) if p is not None], logs)
        client.close()
        server.stop()
        if postgres is not None:
            postgres.cleanup()
    if not args.no_bare and acked:
        stack_us = {k: v / acked * 1e6 for k, v in cpu_used.items()}
        bare_us = bare_cpu_per_request(items, args.rate, args.duration, args.concurrency, use_wrk, tmp)
        total = sum(stack_us.values())
        print("CPU per callback: " + " + ".join(f"{k} {v:.0f}" for k, v in stack_us.items())
              + f" = {total:.0f} us; bare aiohttp handler {bare_us:.0f} us per request at the same rate: "
              f"{total / bare_us:.1f}x (goal <= 3.0x)")


def bare_cpu_per_request(items: list[tuple[str, bytes]], rate: float, duration: float, concurrency: int,
                         use_wrk: bool, workdir: Path) -> float:
    """CPU us per request of bench/ingress.py's bare aiohttp handler (uvloop, reads the body, answers 200),
    driven the same way at the same rate: the baseline the whole stack's CPU per callback is held against."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / "ingress.py"), "--serve", "bare", "--port", str(port),
                             "--redis", "redis://127.0.0.1:1/0", "--spool", str(workdir / "bare-spool")], cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, [proc], path="/callbacks/sms", method="POST")
        with PeakRSS({"bare": proc.pid}) as meter:
            before = meter.cpu_seconds()["bare"]
            if use_wrk:
                answered = int(drive_wrk(base, port, items, rate, duration, concurrency, workdir)["requests"])
            else:
                count = min(len(items), int(rate * duration))
                statuses, _acked, _latencies, _elapsed = asyncio.run(drive(base, items[:count], rate, concurrency))
                answered = statuses.get(200, 0)
            used = meter.cpu_seconds()["bare"] - before
        return used / max(answered, 1) * 1e6
    finally:
        stop_processes(proc)


def run_fuzz(base: str, client: redis.Redis, count: int, concurrency: int) -> str:
    """Post `count` fuzzed bodies; none may get a 5xx; every accepted one is applied or quarantined."""
    from tests.faults.fuzz import fuzz_bodies

    bodies = [("sms", body) for _kind, body in fuzz_bodies(count)]
    before = {k.decode(): int(float(v)) for k, v in client.hgetall(keys.METRICS).items()}
    done_before = (sum(v for k, v in before.items() if k.startswith("tspipe_events_total"))
                   + before.get("tspipe_dedup_hits_total", 0) + before.get("tspipe_quarantined_total", 0))
    statuses, acked, latencies, elapsed = asyncio.run(drive(base, bodies, 1e9, concurrency))
    drain = wait_drained(client, "tspipe.ingest", done_before + len(acked), timeout=300)
    after = {k.decode(): int(float(v)) for k, v in client.hgetall(keys.METRICS).items()}
    quarantined = after.get("tspipe_quarantined_total", 0) - before.get("tspipe_quarantined_total", 0)
    crashed = sum(n for s, n in statuses.items() if not isinstance(s, int) or s >= 500)
    return (f"fuzz: bodies={count} statuses={dict(statuses)} 5xx_or_errors={crashed} "
            f"ack_p99={pct(latencies, 0.99) * 1000:.1f}ms quarantined={quarantined} "
            f"drained={'yes' if drain != float('inf') else 'NO'} in {elapsed + (drain if drain != float('inf') else 0):.1f}s")


if __name__ == "__main__":
    main()
