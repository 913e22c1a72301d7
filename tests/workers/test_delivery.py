"""End to end: fan_out -> Redis -> real Celery worker -> local aiohttp destinations."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time

import redis
from aiohttp import web

from pipeline.event import Outcome
from tests.workers.delivery_support import HttpServer, celery_worker, destinations_env, make_event, wait_for
from store import deadletters
from workers.replay import replay
from workers.fanout import fan_out

SECRET = "whsec_" + base64.b64encode(b"test-secret-0123456789").decode()
FAST = {"backoff_base": 0.05, "backoff_max": 0.2, "circuit_cooldown": 0.2}


def dest(name: str, server: HttpServer, **options) -> dict:
    return {"name": name, "url": server.url + "/hook", "secret": SECRET, **FAST, **options}


async def ok(request: web.Request) -> web.Response:
    return web.Response(status=204)


def verify(headers: dict[str, str], body: bytes) -> bool:
    """Standard Webhooks verification, written from the spec rather than with our signer."""
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return hmac.compare_digest(expected, headers["webhook-signature"]) and abs(
        time.time() - int(headers["webhook-timestamp"])) < 300


def test_healthy_destination_gets_each_matching_event_once_signed(monkeypatch, redis_url) -> None:
    events = [make_event(i) for i in range(5)] + [make_event(9, outcome=Outcome.PENDING, final=False)]
    with HttpServer(ok) as server:
        destinations_env(monkeypatch, redis_url, [dest("a", server, filter={"final_only": True})])
        with celery_worker():
            fan_out(events)
            assert wait_for(lambda: len(server.calls) >= 5)
            time.sleep(0.3)  # room for an unwanted duplicate to show up
    ids = sorted(headers["webhook-id"] for headers, _, _ in server.calls)
    assert ids == [f"evt_{i:04d}" for i in range(5)]
    assert all(verify(headers, body) for headers, body, _ in server.calls)
    assert {b["event_id"] for b in server.bodies()} == set(ids)


def test_retries_5xx_with_same_webhook_id(monkeypatch, redis_url) -> None:
    failures = {"left": 3}

    async def flaky(request: web.Request) -> web.Response:
        if failures["left"] > 0:
            failures["left"] -= 1
            return web.Response(status=500)
        return web.Response(status=200)

    with HttpServer(flaky) as server:
        destinations_env(monkeypatch, redis_url, [dest("a", server, max_attempts=6, circuit_threshold=100)])
        with celery_worker():
            fan_out([make_event(1), make_event(2)])
            assert wait_for(lambda: len(server.calls) == 5)
    ids = [headers["webhook-id"] for headers, _, _ in server.calls]
    assert set(ids) == {"evt_0001", "evt_0002"}
    assert deadletters.list_entries(redis.Redis.from_url(redis_url)) == []


def test_dead_destination_dead_letters_then_replay_delivers(monkeypatch, redis_url) -> None:
    state = {"up": False}

    async def switch(request: web.Request) -> web.Response:
        return web.Response(status=200 if state["up"] else 503)

    client = redis.Redis.from_url(redis_url)
    events = [make_event(i) for i in range(4)]
    with HttpServer(switch) as server:
        destinations_env(monkeypatch, redis_url, [dest("a", server, max_attempts=3)])
        with celery_worker():
            fan_out(events)
            assert wait_for(lambda: len(deadletters.list_entries(client)) == 4)
            entries = deadletters.list_entries(client, "a")
            assert {e.attempts for e in entries} == {3} and entries[0].error == "HTTP 503"
            assert {e.kind for e in entries} == {"destination"}
            state["up"] = True
            server.calls.clear()
            time.sleep(0.3)  # let the circuit's cooldown pass
            assert replay(client, entries) == 4
            assert wait_for(lambda: len({h["webhook-id"] for h, _, _ in server.calls}) == 4)
    assert {h["webhook-id"] for h, _, _ in server.calls} == {e.event_id for e in events}
    assert deadletters.list_entries(client) == []


def test_client_error_is_not_retried(monkeypatch, redis_url) -> None:
    async def gone(request: web.Request) -> web.Response:
        return web.Response(status=410)

    client = redis.Redis.from_url(redis_url)
    with HttpServer(gone) as server:
        destinations_env(monkeypatch, redis_url, [dest("a", server)])
        with celery_worker():
            fan_out([make_event(1)])
            assert wait_for(lambda: len(deadletters.list_entries(client)) == 1)
    assert len(server.calls) == 1
    assert deadletters.list_entries(client)[0].attempts == 1


def test_hanging_destination_does_not_delay_another(monkeypatch, redis_url) -> None:
    async def hang(request: web.Request) -> web.Response:
        await asyncio.sleep(3)
        return web.Response(status=200)

    with HttpServer(hang) as slow, HttpServer(ok) as fast:
        destinations_env(monkeypatch, redis_url, [dest("slow", slow, timeout=0.5, max_attempts=1),
                                                  dest("fast", fast)])
        with celery_worker():
            started = time.monotonic()
            fan_out([make_event(i) for i in range(3)])
            assert wait_for(lambda: len(fast.calls) == 3, timeout=10)
            elapsed = time.monotonic() - started
    assert elapsed < 1.5, f"fast destination waited {elapsed:.2f}s behind the hanging one"


def test_batches_of_n_events_per_post(monkeypatch, redis_url) -> None:
    with HttpServer(ok) as server:
        destinations_env(monkeypatch, redis_url, [dest("a", server, batch_size=3)])
        with celery_worker():
            fan_out([make_event(i) for i in range(7)])
            assert wait_for(lambda: sum(len(b) for b in server.bodies()) == 7)
    assert sorted(len(b) for b in server.bodies()) == [1, 3, 3]
    assert all(h["webhook-id"].startswith("batch_") or len(json.loads(b)) == 1 for h, b, _ in server.calls)


def test_rate_limit_spreads_posts_over_windows(monkeypatch, redis_url) -> None:
    with HttpServer(ok) as server:
        destinations_env(monkeypatch, redis_url, [dest("a", server, rate_limit="3/s")])
        with celery_worker():
            fan_out([make_event(i) for i in range(6)])
            assert wait_for(lambda: len(server.calls) == 6)
    per_second: dict[int, int] = {}
    for _, _, stamp in server.calls:
        per_second[int(stamp)] = per_second.get(int(stamp), 0) + 1
    assert max(per_second.values()) <= 3, per_second
