"""Issue 11, item 3: slow request bodies cannot take the ingress down without any credential.

1,000 connections each send their headers, promise a 60 KB body and trickle it one byte a second.
Signed callbacks on another connection still succeed with p99 <= 50 ms; the slow ones are answered
503 at once beyond TSPIPE_MAX_SLOW_BODIES, or 408 when TSPIPE_BODY_TIMEOUT_S runs out.
"""

from __future__ import annotations

import asyncio
import resource
import time
from pathlib import Path

import aiohttp

from tests.faults.support import unique_callbacks
from tests.faults.test_web_process import web_process
from tests.ingest.conftest import signed
from tests.ingest.test_sigterm import _wait_healthy

SLOW_CLIENTS = 1000
BODY_TIMEOUT_S = 2.0


def _room_for_sockets(needed: int) -> None:
    """This test process holds 1,000 sockets: raise its own soft limit when it is lower."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard) if hard != resource.RLIM_INFINITY else needed, hard))


async def _slow_body(port: int, opened: list[int], stop: asyncio.Event) -> str:
    """Headers at once, then a promised 60 KB body one byte a second; how the server ended it."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError as exc:
        return f"connect failed: {exc.__class__.__name__}"
    opened.append(1)
    try:
        writer.write(b"POST /callbacks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 60000\r\n\r\n{")
        while not stop.is_set():
            try:
                data = await asyncio.wait_for(reader.read(200), 1.0)
            except asyncio.TimeoutError:
                writer.write(b" ")
                continue
            return data.split(b"\r\n", 1)[0].decode(errors="replace") if data else "closed"
        return "still open"
    except (ConnectionResetError, BrokenPipeError):
        return "reset"
    finally:
        writer.close()


async def test_slow_bodies_do_not_starve_signed_callbacks(redis_url: str, tmp_path: Path) -> None:
    _room_for_sockets(SLOW_CLIENTS + 500)
    with web_process(redis_url, tmp_path, TSPIPE_BODY_TIMEOUT_S=str(BODY_TIMEOUT_S)) as (proc, base, port):
        await _wait_healthy(base, proc)
        stop = asyncio.Event()
        opened: list[int] = []
        slow = [asyncio.create_task(_slow_body(port, opened, stop)) for _ in range(SLOW_CLIENTS)]
        while len(opened) + sum(t.done() for t in slow) < SLOW_CLIENTS:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # every slow request has reached the handler
        latencies: list[float] = []
        statuses: list[int] = []
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            for channel, body in unique_callbacks(150):
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
            async with session.get(base + "/healthz") as r:
                healthy = r.status
        await asyncio.sleep(BODY_TIMEOUT_S)  # past the body deadline
        stop.set()
        endings = await asyncio.gather(*slow)
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    tally: dict[str, int] = {}
    for ending in endings:
        tally[ending] = tally.get(ending, 0) + 1
    print(f"\n[fault slow-bodies] slow_clients={SLOW_CLIENTS} endings={tally} good={len(statuses)} "
          f"good_non200={sum(s != 200 for s in statuses)} p50={latencies[len(latencies) // 2] * 1000:.1f}ms "
          f"p99={p99 * 1000:.1f}ms")
    assert set(statuses) == {200} and healthy == 200
    assert p99 <= 0.050
    # Every slow client was answered: 503 beyond the cap, 408 once the deadline ran out; none still held.
    assert set(tally) <= {"HTTP/1.1 503 Service Unavailable", "HTTP/1.1 408 Request Timeout"}, tally
    assert tally.get("HTTP/1.1 408 Request Timeout", 0) >= 1 and tally.get("HTTP/1.1 503 Service Unavailable", 0) >= 1
