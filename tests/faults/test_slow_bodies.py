"""Issue 11, item 3: slow request bodies cannot take the ingress down without any credential.

1,000 connections (tests/faults/slow_clients.py, a process of their own) each send their headers,
promise a 60 KB body and trickle it one byte a second. Signed callbacks on another connection still
succeed with p99 <= 50 ms; the slow ones are answered 503 at once beyond TSPIPE_MAX_SLOW_BODIES, or
408 when TSPIPE_BODY_TIMEOUT_S runs out. (On main they all stayed open.)
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from tests.conftest import REPO_ROOT
from tests.faults.support import unique_callbacks
from tests.faults.test_web_process import web_process
from tests.ingest.conftest import signed
from tests.conftest import wait_healthy

SLOW_CLIENTS = 1000
BODY_TIMEOUT_S = 2.0


async def _signed_latencies(base: str, count: int, start: int) -> tuple[list[float], list[int]]:
    """Sequential signed callbacks on one keep-alive connection: each one's latency, sorted, and statuses."""
    latencies: list[float] = []
    statuses: list[int] = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        for channel, body in unique_callbacks(count, start=start):
            started = time.monotonic()
            try:
                async with session.post(f"{base}/callbacks/{channel}", data=body, headers=signed(body)) as r:
                    await r.read()
                    statuses.append(r.status)
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                statuses.append(-1)
                print("good request failed:", repr(exc))
            latencies.append(time.monotonic() - started)
            await asyncio.sleep(0.005)
    return sorted(latencies), statuses


def _p99(latencies: list[float]) -> float:
    return latencies[int(len(latencies) * 0.99) - 1]


async def test_slow_bodies_do_not_starve_signed_callbacks(redis_url: str, tmp_path: Path) -> None:
    with web_process(redis_url, tmp_path, TSPIPE_BODY_TIMEOUT_S=str(BODY_TIMEOUT_S)) as (proc, base, port):
        await wait_healthy(base, proc)
        # The same client before any slow one: what this machine gives right now, for the record.
        quiet, _ = await _signed_latencies(base, 200, start=100_000)
        slow = subprocess.Popen([sys.executable, "-m", "tests.faults.slow_clients", str(port), str(SLOW_CLIENTS)],
                                env=dict(os.environ, PYTHONPATH=REPO_ROOT), stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
        try:
            ready = await asyncio.get_running_loop().run_in_executor(None, slow.stdout.readline)
            assert ready.strip() == "ready"
            await asyncio.sleep(0.3)  # every slow request has reached the handler
            latencies, statuses = await _signed_latencies(base, 200, start=1)
            async with aiohttp.ClientSession() as session:
                async with session.get(base + "/healthz") as r:
                    healthy = r.status
            await asyncio.sleep(BODY_TIMEOUT_S)  # past the body deadline
            out, _ = slow.communicate("stop\n", timeout=30)
        finally:
            if slow.poll() is None:
                slow.kill()
                slow.wait()
    tally = json.loads(out.strip().splitlines()[-1])
    p99 = _p99(latencies)
    print(f"\n[fault slow-bodies] slow_clients={SLOW_CLIENTS} endings={tally} good={len(statuses)} "
          f"good_non200={sum(s != 200 for s in statuses)} p50={latencies[len(latencies) // 2] * 1000:.1f}ms "
          f"p99={p99 * 1000:.1f}ms; before the slow clients: p99={_p99(quiet) * 1000:.1f}ms")
    assert set(statuses) == {200} and healthy == 200
    # The bound. On a machine so loaded that even the quiet run misses it (the suite shares
    # two cores with other work), the slow clients may not make it more than three times as bad.
    assert p99 <= max(0.050, 3 * _p99(quiet))  # 50 ms on a quiet machine; a loaded one scales its own baseline
    # Every slow client was answered: 503 beyond the cap, 408 once the deadline ran out; none still held.
    assert set(tally) <= {"HTTP/1.1 503 Service Unavailable", "HTTP/1.1 408 Request Timeout"}, tally
    assert tally.get("HTTP/1.1 408 Request Timeout", 0) >= 1 and tally.get("HTTP/1.1 503 Service Unavailable", 0) >= 1
