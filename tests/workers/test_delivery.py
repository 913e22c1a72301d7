"""End to end: fan_out -> the destinations' Redis queues -> the real delivery engine -> local aiohttp receivers.

Every request a receiver gets is verified with svix (verify_all), the Standard Webhooks library."""

from __future__ import annotations

import asyncio
import base64
import json
import time

import redis
from aiohttp import web

from pipeline.event import Outcome
from tests.workers.delivery_support import HttpServer, delivery_engine, destinations_env, make_event, verify_all, wait_for
from store import circuit, deadletters, delivery_queue, keys
from workers.replay import replay
from workers.fanout import fan_out

SECRET = "whsec_" + base64.b64encode(b"test-secret-0123456789").decode()
FAST = {"backoff_base": 0.05, "backoff_max": 0.2, "circuit_cooldown": 0.2}


def dest(name: str, server: HttpServer, **options) -> dict:
    return {"name": name, "url": server.url + "/hook", "secret": SECRET, **FAST, **options}


async def ok(request: web.Request) -> web.Response:
    return web.Response(status=204)


async def gone(request: web.Request) -> web.Response:
    return web.Response(status=410)


def verify(headers: dict[str, str], body: bytes) -> bool:
    """Standard Webhooks verification by svix, a library nobody here wrote (it also checks the timestamp)."""
    verify_all(SECRET, [(headers, body, 0.0)])
    return True


def test_healthy_destination_gets_each_matching_event_once_signed(monkeypatch, redis_url) -> None:
    events = [make_event(i) for i in range(5)] + [make_event(9, outcome=Outcome.PENDING, final=False)]
    with HttpServer(ok) as server:
        destinations_env(monkeypatch, redis_url, [dest("a", server, filter={"final_only": True})])
        with delivery_engine():
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
        with delivery_engine():
            fan_out([make_event(1), make_event(2)])
            assert wait_for(lambda: len(server.calls) == 5)
    ids = [headers["webhook-id"] for headers, _, _ in server.calls]
    assert set(ids) == {"evt_0001", "evt_0002"}
    verify_all(SECRET, server.calls)
    counted = redis.Redis.from_url(redis_url).hgetall(keys.METRICS)  # shown on /metrics
    assert counted[b'tspipe_webhooks_total{destination="a",outcome="delivered"}'] == b"2"
    assert counted[b'tspipe_webhooks_total{destination="a",outcome="retried"}'] == b"3"
    assert deadletters.list_entries(redis.Redis.from_url(redis_url)) == []


def test_dead_destination_dead_letters_then_replay_delivers(monkeypatch, redis_url) -> None:
    state = {"up": False}

    async def switch(request: web.Request) -> web.Response:
        return web.Response(status=200 if state["up"] else 503)

    client = redis.Redis.from_url(redis_url)
    events = [make_event(i) for i in range(4)]
    with HttpServer(switch) as server:
        destinations_env(monkeypatch, redis_url, [dest("a", server, max_attempts=3)])
        with delivery_engine():
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
    verify_all(SECRET, server.calls)


def test_client_error_is_not_retried(monkeypatch, redis_url) -> None:
    client = redis.Redis.from_url(redis_url)
    with HttpServer(gone) as server:
        destinations_env(monkeypatch, redis_url, [dest("a", server)])
        with delivery_engine():
            fan_out([make_event(1)])
            assert wait_for(lambda: len(deadletters.list_entries(client)) == 1)
    assert len(server.calls) == 1
    assert deadletters.list_entries(client)[0].attempts == 1
    verify_all(SECRET, server.calls)


def test_hanging_destination_does_not_delay_another(monkeypatch, redis_url) -> None:
    async def hang(request: web.Request) -> web.Response:
        await asyncio.sleep(3)
        return web.Response(status=200)

    with HttpServer(hang) as slow, HttpServer(ok) as fast:
        destinations_env(monkeypatch, redis_url, [dest("slow", slow, timeout=0.5, max_attempts=1),
                                                  dest("fast", fast)])
        with delivery_engine():
            started = time.monotonic()
            fan_out([make_event(i) for i in range(3)])
            assert wait_for(lambda: len(fast.calls) == 3, timeout=10)
            elapsed = time.monotonic() - started
    assert elapsed < 1.5, f"fast destination waited {elapsed:.2f}s behind the hanging one"
    verify_all(SECRET, fast.calls + slow.calls)


def test_batches_of_n_events_per_post(monkeypatch, redis_url) -> None:
    with HttpServer(ok) as server:
        destinations_env(monkeypatch, redis_url, [dest("a", server, batch_size=3)])
        with delivery_engine():
            fan_out([make_event(i) for i in range(7)])
            assert wait_for(lambda: sum(len(b) for b in server.bodies()) == 7)
    assert sorted(len(b) for b in server.bodies()) == [1, 3, 3]
    assert all(h["webhook-id"].startswith("batch_") or len(json.loads(b)) == 1 for h, b, _ in server.calls)
    verify_all(SECRET, server.calls)


def test_rate_limit_spreads_posts_over_windows(monkeypatch, redis_url) -> None:
    with HttpServer(ok) as server:
        destinations_env(monkeypatch, redis_url, [dest("a", server, rate_limit="3/s")])
        with delivery_engine():
            fan_out([make_event(i) for i in range(6)])
            assert wait_for(lambda: len(server.calls) == 6)
    # Counted by the second each POST was sent in (webhook-timestamp): receipt times also carry the
    # network's delay, and a fixed window lets 3 go at the end of one second and 3 at the start of the next.
    per_second: dict[int, int] = {}
    for headers, _, _ in server.calls:
        stamp = int(headers["webhook-timestamp"])
        per_second[stamp] = per_second.get(stamp, 0) + 1
    assert max(per_second.values()) <= 3, per_second
    verify_all(SECRET, server.calls)


def test_probe_answered_with_a_4xx_closes_the_circuit(monkeypatch, redis_url) -> None:
    """Issue 11.12: a 4xx to the half-open probe used to record nothing, leaving the probe lock held."""
    state = {"answers": []}

    async def answer(request: web.Request) -> web.Response:
        return web.Response(status=state["answers"].pop(0) if state["answers"] else 503)

    client = redis.Redis.from_url(redis_url)
    with HttpServer(answer) as server:
        destinations_env(monkeypatch, redis_url, [dest("a", server, concurrency=1, circuit_threshold=2,
                                                       circuit_cooldown=0.3, max_attempts=50)])
        with delivery_engine():
            fan_out([make_event(i) for i in range(5)])
            assert wait_for(lambda: client.hexists(circuit.key("a"), "open_until"))
            state["answers"] = [404] + [200] * 10
            assert wait_for(lambda: len([h for h, _, _ in server.calls]) >= 2 and not client.hexists(
                circuit.key("a"), "open_until") and len(deadletters.list_entries(client)) == 1, timeout=10)
            assert wait_for(lambda: delivery_queue.depth(client, "a") == {"ready": 0, "delayed": 0, "in_flight": 0})
    assert deadletters.list_entries(client)[0].error == "HTTP 404"
    assert not client.hexists(circuit.key("a"), "probe_until")
    verify_all(SECRET, server.calls)


def test_open_circuit_holds_deliveries_without_spending_attempts_or_spinning(monkeypatch, redis_url) -> None:
    async def down(request: web.Request) -> web.Response:
        return web.Response(status=503)

    client = redis.Redis.from_url(redis_url)
    with HttpServer(down) as server:
        destinations_env(monkeypatch, redis_url, [dest("a", server, concurrency=2, circuit_threshold=2,
                                                       circuit_cooldown=1.0, max_attempts=3)])
        with delivery_engine():
            fan_out([make_event(i) for i in range(20)])
            assert wait_for(lambda: client.hexists(circuit.key("a"), "open_until"))
            opened = time.time()
            time.sleep(2.6)
            depth = delivery_queue.depth(client, "a")
    # Once open: one probe per cooldown (1.0-1.1 s, so two in 2.6 s), nothing else; requests already
    # in flight when it opened may still land in the first moment.
    after = [stamp for _, _, stamp in server.calls if stamp > opened + 0.3]
    assert 1 <= len(after) <= 3, len(after)
    # Held deliveries keep their attempts: only jobs that were actually sent three times are dead letters.
    dead = deadletters.list_entries(client)
    assert len(dead) <= len(server.calls) // 3
    assert depth["ready"] + depth["delayed"] + depth["in_flight"] + len(dead) == 20
    verify_all(SECRET, server.calls)


def test_held_deliveries_are_bounded_by_max_queued(monkeypatch, redis_url) -> None:
    client = redis.Redis.from_url(redis_url)
    destinations_env(monkeypatch, redis_url, [{"name": "a", "url": "http://127.0.0.1:9/", "secret": SECRET,
                                               "max_queued": 5}])
    fan_out([make_event(i) for i in range(8)])
    assert delivery_queue.depth(client, "a")["ready"] == 5
    dead = deadletters.list_entries(client, "a")
    assert len(dead) == 3 and all("max_queued" in e.error for e in dead)
    assert {json.loads(bytes(e.event))["event_id"] for e in dead} == {"evt_0005", "evt_0006", "evt_0007"}
    # Counted with the engine's own dead letters, so the per-destination rate in /metrics shows them.
    assert client.hget(keys.METRICS, 'tspipe_webhooks_total{destination="a",outcome="dead_lettered"}') == b"3"


def test_dead_letters_from_the_engine_are_held_to_their_byte_cap(monkeypatch, redis_url) -> None:
    """A destination that refuses everything: the engine's own dead-letter pushes keep the list within
    TSPIPE_DEADLETTER_MAX_BYTES (oldest dropped and counted), as every other push does."""
    client = redis.Redis.from_url(redis_url)
    with HttpServer(gone) as server:
        destinations_env(monkeypatch, redis_url, [dest("a", server)], TSPIPE_DEADLETTER_MAX_BYTES="4096")
        with delivery_engine():
            fan_out([make_event(n) for n in range(60)])
            assert wait_for(lambda: len(server.calls) == 60)
            dropped = lambda: int(client.hget(keys.METRICS, "tspipe_deadletters_dropped_total") or 0)  # noqa: E731
            assert wait_for(lambda: dropped() + client.llen(keys.DEADLETTER) == 60)
    held = client.lrange(keys.DEADLETTER, 0, -1)
    assert 0 < sum(map(len, held)) <= 4096 and int(client.get(keys.DEADLETTER_BYTES)) == sum(map(len, held))
    assert dropped() == 60 - len(held) > 0
    newest = json.loads(bytes(deadletters.list_entries(client)[0].event))["event_id"]
    assert newest in {f"evt_{n:04d}" for n in range(40, 60)}  # the oldest went first
