"""POST /v1/opt-outs/check latency for 1,000 addresses, against asking one address at a time, in one run.

    python bench/optout_check.py [--requests 300] [--listed 100000] [--erased 10]

Starts a private redis-server, fills the opt-out list with --listed addresses
(through the import path), starts the real web process (`tspipe web`) and,
over one keep-alive connection from this process, times:

- check:    POST /v1/opt-outs/check with 1,000 addresses (one in ten opted out);
- per-address: the same 1,000 addresses as 1,000 GET /v1/opt-outs/{address} (the baseline: what a
  sender could do before), a few rounds;
- command:  the check's Redis command alone, from a sync client (what one round trip costs).

and the CPU each check cost the web process (/proc) and Redis (commandstats), which
a machine loaded by other work inflates less than wall-clock latency.

Prints p50, p99 and max in ms; the goal is a check p99 <= 5 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from proc_cpu import cpu_seconds  # noqa: E402

import aiohttp  # noqa: E402
import redis  # noqa: E402

from store.suppression import ImportRow, check_command, import_rows  # noqa: E402
from tspipe.redis_server import RedisServer, free_port  # noqa: E402




def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def line(name: str, ms: list[float]) -> str:
    return (f"{name:<34} p50 {statistics.median(ms):7.2f} ms   p99 {pct(ms, 0.99):7.2f} ms   "
            f"max {max(ms):7.2f} ms   (n={len(ms)})")


async def checks(url: str, addresses: list[str], requests: int) -> list[float]:
    out = []
    payload = {"addresses": addresses}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as session:
        for _ in range(20):
            async with session.post(f"{url}/v1/opt-outs/check", json=payload) as answer:
                assert answer.status == 200, await answer.text()
                await answer.read()
        for _ in range(requests):
            start = time.perf_counter()
            async with session.post(f"{url}/v1/opt-outs/check", json=payload) as answer:
                await answer.read()
            out.append((time.perf_counter() - start) * 1000)
    return out


async def singles(url: str, addresses: list[str], rounds: int) -> list[float]:
    out = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as session:
        for _ in range(rounds):
            start = time.perf_counter()
            for address in addresses:
                async with session.get(f"{url}/v1/opt-outs/{address}") as answer:
                    await answer.read()
            out.append((time.perf_counter() - start) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--listed", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of 1,000 single GETs (the baseline)")
    parser.add_argument("--erased", type=int, default=0,
                        help="set TSPIPE_ERASURE_KEY (as `tspipe run` does) and erase this many of the listed "
                             "addresses asked about, so the check also looks up erased opt-outs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(Path(tmp) / "redis", appendonly=False).start()
        web = None
        try:
            client = redis.Redis.from_url(server.url)
            now = time.time()
            import_rows(client, [ImportRow(address=f"1555{n:07d}", action="stop", channel="sms", keyword="stop",
                                           ts=now - n) for n in range(args.listed)])
            # One in ten asked about is listed: 100 listed numbers among 900 unknown ones.
            addresses = [f"1555{n:07d}" if n % 10 == 0 else f"1666{n:07d}" for n in range(1000)]
            erasure = {}
            if args.erased:
                from store.erasure import erase_subject

                erasure = {"TSPIPE_ERASURE_KEY": "bench-erasure-key-0123456789abcdef"}
                for address in addresses[:10 * args.erased:10]:
                    erase_subject(client, address, erasure["TSPIPE_ERASURE_KEY"])
            port = free_port()
            env = dict(os.environ, REDIS_URL=server.url, PORT=str(port), TSPIPE_HOST="127.0.0.1",
                       TSPIPE_DATA_DIR=str(Path(tmp) / "data"), TSPIPE_LOG_LEVEL="warning", **erasure)
            web = subprocess.Popen([sys.executable, "-m", "tspipe", "web"], env=env, cwd=ROOT,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 20
            while True:
                try:
                    import urllib.request

                    urllib.request.urlopen(f"{url}/healthz", timeout=1).read()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise SystemExit("the web process did not start")
                    time.sleep(0.1)
            idle = cpu_seconds(web.pid)
            time.sleep(2.0)
            idle = (cpu_seconds(web.pid) - idle) / 2.0  # CPU seconds per second with no request: background work
            client.config_resetstat()
            web_cpu = cpu_seconds(web.pid)
            started = time.perf_counter()
            check_ms = asyncio.run(checks(url, addresses, args.requests))
            web_cpu = (cpu_seconds(web.pid) - web_cpu - idle * (time.perf_counter() - started)) / (args.requests + 20)
            stats = client.info("commandstats")
            redis_us = sum(stats.get(f"cmdstat_{c}", {}).get("usec", 0) for c in ("zmscore", "smismember", "exists"))
            redis_us /= max(1, stats.get("cmdstat_zmscore", {}).get("calls", 1))
            single_cpu = cpu_seconds(web.pid)
            single_ms = asyncio.run(singles(url, addresses, args.rounds))
            single_cpu = (cpu_seconds(web.pid) - single_cpu) / (1000 * args.rounds)
            connection = client.connection_pool.get_connection()
            redis_ms = []
            for _ in range(args.requests):
                start = time.perf_counter()
                connection.send_packed_command([check_command(addresses)])
                found = connection.read_response()
                redis_ms.append((time.perf_counter() - start) * 1000)
            client.connection_pool.release(connection)
            assert sum(score is not None for score in found) == 100 - args.erased
            print(f"opt-out list: {client.zcard('ts:optouts'):,} addresses; each request asks about 1,000 (100 listed"
                  + (f", {args.erased} of them erased: TSPIPE_ERASURE_KEY set)" if args.erased else ")"))
            print(line("check, 1,000 addresses (HTTP)", check_ms))
            print(line("the command alone (sync, hiredis)", redis_ms))
            print(line("baseline: 1,000 single GETs", single_ms))
            print(f"CPU per check: web process {1e6 * web_cpu:,.0f} us (its idle background work, "
                  f"{100 * idle:.1f}% of a core, taken out), Redis "
                  f"{redis_us:,.0f} us (ZMSCORE, SMISMEMBER, EXISTS: commandstats); "
                  f"one single GET costs the web process {1e6 * single_cpu:,.0f} us")
            ratio = statistics.median(single_ms) / statistics.median(check_ms)
            goal = "met" if pct(check_ms, 0.99) <= 5.0 else "NOT met"
            print(f"check is {ratio:.0f}x faster than asking one address at a time; goal p99 <= 5 ms: {goal}")
        finally:
            if web is not None:
                web.terminate()
                web.wait(10)
            server.stop()


if __name__ == "__main__":
    main()
