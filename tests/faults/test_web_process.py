"""Issue 7d and 7g against a real `tspipe web` subprocess (uvloop, run_app options as in production).

d: SIGTERM mid steady load: every 200 the process sent is in Redis (200 means durably stored).
g: a slowloris client (headers trickled) is disconnected by the header timeout and an oversize body
   gets 413, while another client's callbacks keep succeeding with bounded latency.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import aiohttp

from tests.faults.support import unique_callbacks
from tests.ingest.conftest import API_KEY, CUSTOMER_ID, signed
from tests.ingest.queue import queued_bodies
from tests.conftest import wait_healthy
from tests.ingest.test_sigterm import TSPIPE
from tspipe.redis_server import free_port


@contextmanager
def web_process(redis_url: str, tmp_path: Path, **env_extra: str):
    port = free_port()
    env = {
        **os.environ, "REDIS_URL": redis_url, "PORT": str(port), "TSPIPE_HOST": "127.0.0.1",
        "TSPIPE_SPOOL_DIR": str(tmp_path / "spool"), "TELESIGN_API_KEY": API_KEY,
        "TELESIGN_CUSTOMER_ID": CUSTOMER_ID, "TSPIPE_LOG_FORMAT": "json", "TSPIPE_LOG_LEVEL": "warning",
        **env_extra,
    }
    log = (tmp_path / "web.log").open("wb")
    proc = subprocess.Popen([TSPIPE, "web"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield proc, f"http://127.0.0.1:{port}", port
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        log.close()


async def test_sigterm_mid_steady_load_every_200_is_in_redis(redis_url: str, tmp_path: Path) -> None:
    with web_process(redis_url, tmp_path) as (proc, base, _port):
        await wait_healthy(base, proc)
        callbacks = iter(unique_callbacks(50000))
        answers: dict[bytes, int | None] = {}

        async def sender(session: aiohttp.ClientSession) -> None:
            for channel, body in callbacks:
                try:
                    async with session.post(f"{base}/callbacks/{channel}", data=body, headers=signed(body)) as r:
                        await r.read()
                        answers[body] = r.status
                except (aiohttp.ClientError, asyncio.TimeoutError):
                    answers[body] = None
                    if proc.poll() is not None:
                        return

        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            senders = [asyncio.create_task(sender(session)) for _ in range(8)]
            await asyncio.sleep(1.5)
            proc.send_signal(signal.SIGTERM)
            await asyncio.gather(*senders)
        assert proc.wait(timeout=15) == 0
    acked = {b for b, s in answers.items() if s == 200}
    queued = queued_bodies(redis_url)
    lost = len(acked - set(queued))
    duplicated = len(queued) - len(set(queued))
    other = sum(1 for s in answers.values() if s not in (200, None))
    print(f"\n[fault web-sigterm] sent={len(answers)} acked={len(acked)} refused_or_reset={len(answers) - len(acked)} "
          f"non200_answers={other} queued={len(queued)} lost={lost} duplicated={duplicated}")
    assert len(acked) > 200
    assert lost == 0 and duplicated == 0


async def _slowloris(port: int, interval: float) -> tuple[str, float]:
    """Send a request's header bytes one at a time; report how the server ended it and when."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    start = time.monotonic()
    request = b"POST /callbacks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Padding: " + b"a" * 200
    try:
        for byte in request:
            writer.write(bytes([byte]))
            await writer.drain()
            try:
                data = await asyncio.wait_for(reader.read(1024), interval)
            except asyncio.TimeoutError:
                continue
            return ("closed" if not data else f"answered {data[:12]!r}"), time.monotonic() - start
        return "still open", time.monotonic() - start
    except (ConnectionResetError, BrokenPipeError):
        return "reset", time.monotonic() - start
    finally:
        writer.close()


async def _oversize(port: int, size: int) -> str:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /callbacks HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % size)
    try:
        for _ in range(size // 65536 + 1):
            writer.write(b"x" * 65536)
            await writer.drain()
    except (ConnectionResetError, BrokenPipeError):
        pass
    try:
        data = await asyncio.wait_for(reader.read(1024), 5)
    except ConnectionResetError:
        return "reset"
    finally:
        writer.close()
    return data.split(b"\r\n", 1)[0].decode(errors="replace")


async def test_slowloris_and_oversize_do_not_starve_others(redis_url: str, tmp_path: Path) -> None:
    with web_process(redis_url, tmp_path, TSPIPE_HEADER_TIMEOUT_S="1") as (proc, base, port):
        await wait_healthy(base, proc)
        latencies: list[float] = []
        statuses: list[int] = []
        stop = asyncio.Event()

        async def good_client() -> None:
            async with aiohttp.ClientSession() as session:
                for channel, body in unique_callbacks(100000):
                    if stop.is_set():
                        return
                    t = time.monotonic()
                    async with session.post(f"{base}/callbacks/{channel}", data=body, headers=signed(body)) as r:
                        await r.read()
                        statuses.append(r.status)
                    latencies.append(time.monotonic() - t)
                    await asyncio.sleep(0.01)

        good = asyncio.create_task(good_client())
        slow = await asyncio.gather(*(_slowloris(port, 0.25) for _ in range(20)))
        big = await _oversize(port, 1_000_000)
        stop.set()
        await good
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    endings = {how for how, _t in slow}
    slowest_cut = max(t for _h, t in slow)
    print(f"\n[fault slowloris] slow_clients={len(slow)} endings={sorted(endings)} cut_after_max={slowest_cut:.2f}s "
          f"oversize={big!r} good_requests={len(statuses)} good_non200={sum(s != 200 for s in statuses)} "
          f"good_p50={latencies[len(latencies) // 2] * 1000:.1f}ms good_p99={p99 * 1000:.1f}ms")
    assert endings <= {"closed", "reset"}
    assert slowest_cut < 3.0
    assert big.startswith("HTTP/1.1 413") or big == "reset"
    assert statuses and set(statuses) == {200}
    assert p99 < 0.5


async def test_junk_that_is_not_http_gets_400_a_count_and_no_error_log(redis_url: str, tmp_path: Path) -> None:
    """Bytes that are not an HTTP request (a scanner, or the rest of a body after a 413): aiohttp answers 400.
    It used to log each at error level with the bytes, through the masker: now they are counted in /metrics,
    and a 1 MB junk line costs the process nothing lasting (signed callbacks still answer at once)."""
    with web_process(redis_url, tmp_path) as (proc, base, port):
        await wait_healthy(base, proc)
        for junk in (b"x" * 1_000_000 + b"\r\n\r\n", b"GET / HTTP/1.1\r\nBad Header\r\n\r\n", b"\x16\x03\x01\x02\x00\x01"):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                writer.write(junk)
                with contextlib.suppress(ConnectionResetError, BrokenPipeError):
                    await writer.drain()
                answer = await asyncio.wait_for(reader.read(1024), 10)
            except ConnectionResetError:
                answer = b"reset"
            finally:
                writer.close()
            assert answer.startswith((b"HTTP/1.1 400", b"HTTP/1.0 400")) or answer == b"reset", answer[:80]
        async with aiohttp.ClientSession() as session:
            channel, body = next(iter(unique_callbacks(1)))
            async with session.post(f"{base}/callbacks/{channel}", data=body, headers=signed(body),
                                    timeout=aiohttp.ClientTimeout(total=10)) as r:
                assert r.status == 200
            async with session.get(f"{base}/metrics") as r:
                text = await r.text()
        counted = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                      if line.startswith("tspipe_ingest_malformed_requests_total{"))
        assert counted >= 2, text
    log = (tmp_path / "web.log").read_text()
    assert "Error handling request" not in log and "xxxxxxxx" not in log
