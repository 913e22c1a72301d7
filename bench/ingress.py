"""Ingress throughput against its two baselines, in one run, under the same load.

    python bench/ingress.py [--seconds 10] [--connections 64] [--rounds 1] [--modes ingress,bare,delay]

Starts a private redis-server on a free port, then, one after the other, three
web processes on 127.0.0.1, each driven by the same load generator (wrk when
installed, else a bounded aiohttp client):

- ingress: the real app (signature checked, micro-batched, 200 after the write);
- bare:    an aiohttp handler that reads the body and answers 200 (the ceiling);
- delay:   an aiohttp handler that calls `task.delay(body)` per request (the naive way).

Prints req/s, p50 and p99 for each, the ratios ingress/bare and ingress/delay,
and the peak RSS of the ingress process. Every server runs on uvloop. With
--rounds N the handlers take turns N times (so a burst of other load on a
shared machine hits them alike) and every column is the median of the N runs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from proc_cpu import cpu_seconds  # noqa: E402

API_KEY = "EXAMPLE----TE8sTgg45yusumoN6BYsBVkh+yRJ5czgsnCehZaOYldPJdmFh6NeX8kunZ2zU1YWaUw/0wV6xfw=="
CUSTOMER_ID = "BENCH"
MODES = ("ingress", "bare", "delay")


# --- the three servers (run in a child process: `ingress.py --serve MODE`) ---


def serve(mode: str, port: int, redis_url: str, spool_dir: str) -> None:
    import uvloop
    from aiohttp import web

    from config import load_settings

    settings = load_settings(
        {},
        redis_url=redis_url,
        telesign_api_keys=(API_KEY,),
        telesign_customer_id=CUSTOMER_ID,
        spool_dir=spool_dir,
        log_level="warning",
    )
    if mode == "ingress":
        from ingest.app import create_app

        app = create_app(settings)
    elif mode == "bare":
        async def bare(request: web.Request) -> web.Response:
            await request.read()
            return web.Response(body=b"ok")

        app = web.Application()
        app.router.add_post("/callbacks", bare)
        app.router.add_post("/callbacks/{channel}", bare)  # bench/stack.py posts per channel
    else:
        from pipeline.record import INGEST_BATCH_TASK, Record, encode_batch
        from workers.app import make_celery

        celery_app = make_celery(settings)

        @celery_app.task(name=INGEST_BATCH_TASK)
        def ingest_batch(blob: bytes) -> None:  # consumed by the real workers, never run here
            return None

        task = ingest_batch

        async def delay(request: web.Request) -> web.Response:
            body = await request.read()
            task.delay(encode_batch([Record(body=body, received_at=time.time())]))
            return web.Response(body=b"ok")

        app = web.Application()
        app.router.add_post("/callbacks", delay)
    uvloop.install()
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


# --- load generators ---


WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = {body}
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = {auth}
"""


def _lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def run_wrk(url: str, body: bytes, auth: str, seconds: float, connections: int, workdir: Path) -> dict[str, float]:
    script = workdir / "post.lua"
    script.write_text(WRK_SCRIPT.format(body=_lua_string(body.decode()), auth=_lua_string(auth)))
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{int(seconds)}s", "--latency", "-s", str(script), url],
        capture_output=True, text=True, check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:(.*)", out)
    return {
        "rps": rps,
        "p50_ms": _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1)),
        "p99_ms": _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1)),
        "non_2xx": float(non2xx.group(1)) if non2xx else 0.0,
        "socket_errors": 1.0 if errors else 0.0,
    }


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def run_aiohttp_client(url: str, body: bytes, auth: str, seconds: float, connections: int) -> dict[str, float]:
    import aiohttp

    async def main() -> dict[str, float]:
        latencies: list[float] = []
        bad = 0
        deadline = time.perf_counter() + seconds

        async def worker(session: aiohttp.ClientSession) -> None:
            nonlocal bad
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                async with session.post(url, data=body, headers={"Authorization": auth}) as response:
                    await response.read()
                    bad += response.status != 200
                latencies.append(time.perf_counter() - started)

        connector = aiohttp.TCPConnector(limit=connections)
        async with aiohttp.ClientSession(connector=connector) as session:
            await asyncio.gather(*(worker(session) for _ in range(connections)))
        latencies.sort()
        return {
            "rps": len(latencies) / seconds,
            "p50_ms": latencies[len(latencies) // 2] * 1000,
            "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
            "non_2xx": float(bad),
            "socket_errors": 0.0,
        }

    return asyncio.run(main())


# --- orchestration ---


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")




def wait_listening(port: int, proc: subprocess.Popen[bytes]) -> None:
    import socket

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with status {proc.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit("server did not start listening")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--serve", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--redis", help=argparse.SUPPRESS)
    parser.add_argument("--spool", help=argparse.SUPPRESS)
    parser.add_argument("--generator", choices=("auto", "wrk", "aiohttp"), default="auto")
    parser.add_argument("--rounds", type=int, default=1, help="take turns this many times; report medians")
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated subset of ingress,bare,delay")
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.redis, args.spool)
        return

    from pipeline.signature import decode_api_key, sign
    from tspipe.redis_server import RedisServer

    modes = [m for m in args.modes.split(",") if m]
    if not modes or any(m not in MODES for m in modes):
        parser.error(f"--modes takes a comma-separated subset of {','.join(MODES)}")
    body = (ROOT / "tests" / "fixtures" / "telesign" / "delivery_rcs_fallback_to_sms.json").read_bytes()
    auth = f"TSA {CUSTOMER_ID}:{sign(decode_api_key(API_KEY), body)}"
    use_wrk = args.generator == "wrk" or (args.generator == "auto" and shutil.which("wrk"))
    generator = "wrk -t1" if use_wrk else "aiohttp client"
    runs: dict[str, list[dict[str, float]]] = {mode: [] for mode in modes}
    with tempfile.TemporaryDirectory(prefix="tspipe-bench-") as tmp:
        workdir = Path(tmp)
        redis_server = RedisServer(workdir / "redis", appendonly=False).start()
        try:
            for _ in range(args.rounds):
                for mode in modes:
                    runs[mode].append(run_one(mode, args, redis_server, workdir, body, auth, use_wrk))
        finally:
            redis_server.stop()
    results = {mode: {key: statistics.median(r[key] for r in rs) for key in rs[0]} for mode, rs in runs.items()}

    print(f"ingress bench: {args.connections} connections, {args.seconds:.0f} s each, generator {generator}, "
          f"{os.cpu_count()} CPUs, body {len(body)} bytes"
          + (f", median of {args.rounds} rounds" if args.rounds > 1 else ""))
    print(f"{'handler':<8} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8} {'peak RSS MB':>12}"
          f" {'web CPU us/req':>15} {'redis CPU us/req':>17}")
    for mode, r in results.items():
        print(f"{mode:<8} {r['rps']:>9.0f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} {r['non_2xx']:>8.0f} {r['rss_mb']:>12.1f}"
              f" {r['cpu_us']:>15.1f} {r['redis_cpu_us']:>17.1f}")
    if args.rounds > 1:
        for mode, rs in runs.items():
            rps = " ".join(f"{r['rps']:.0f}" for r in rs)
            cpu = " ".join(f"{r['cpu_us']:.1f}" for r in rs)
            print(f"{mode:<8} req/s per round: {rps}; CPU us/req: {cpu}")
    if "ingress" in results and "bare" in results:
        ratios = [i["rps"] / b["rps"] for i, b in zip(runs["ingress"], runs["bare"])]
        per_round = "  per round: " + " ".join(f"{r:.2f}" for r in ratios) if args.rounds > 1 else ""
        print(f"ingress/bare  = {statistics.median(ratios):.2f}  (goal >= 0.90){per_round}")
    if "ingress" in results and "delay" in results:
        print(f"ingress/delay = {results['ingress']['rps'] / results['delay']['rps']:.2f}  (goal >= 8)")
    if "ingress" in results:
        ing = results["ingress"]
        print(f"ingress p99   = {ing['p99_ms']:.2f} ms (goal <= 10)")
        print(f"ingress RSS   = {ing['rss_mb']:.1f} MB (goal <= 150)")
        print(f"ingress queue = {ing['queued']:.0f} messages in Redis after the last run")


def run_one(mode: str, args: argparse.Namespace, redis_server, workdir: Path, body: bytes, auth: str,
            use_wrk: bool) -> dict[str, float]:
    """One handler in its own process: warm up for 1 s, then measure for args.seconds."""
    from tspipe.redis_server import free_port

    redis_server_flush(redis_server.url)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", mode, "--port", str(port),
         "--redis", redis_server.url, "--spool", str(workdir / "spool")],
        cwd=ROOT, env={**os.environ, "TSPIPE_LOG_LEVEL": "warning"},
    )
    try:
        wait_listening(port, proc)
        url = f"http://127.0.0.1:{port}/callbacks"
        # Warm-up: imports, connections, the first batches.
        if use_wrk:
            run_wrk(url, body, auth, 1, args.connections, workdir)
        else:
            run_aiohttp_client(url, body, auth, 1, args.connections)
        cpu_before, redis_before = cpu_seconds(proc.pid), cpu_seconds(redis_server.process.pid)
        if use_wrk:
            result = run_wrk(url, body, auth, args.seconds, args.connections, workdir)
        else:
            result = run_aiohttp_client(url, body, auth, args.seconds, args.connections)
        requests = result["rps"] * args.seconds
        result["cpu_us"] = (cpu_seconds(proc.pid) - cpu_before) / requests * 1e6
        result["redis_cpu_us"] = (cpu_seconds(redis_server.process.pid) - redis_before) / requests * 1e6
        result["rss_mb"] = peak_rss_mb(proc.pid)
        result["queued"] = float(redis_queue_records(redis_server.url))
        return result
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def redis_server_flush(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    client.flushall()
    client.close()


def redis_queue_records(url: str, queue: str = "tspipe.ingest") -> int:
    """Messages in the queue after the run: evidence that the writes really happened."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        return int(client.llen(queue))
    finally:
        client.close()


if __name__ == "__main__":
    main()
