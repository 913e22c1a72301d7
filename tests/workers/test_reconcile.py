"""Reconciliation against a local fake Telesign: stuck messages get their final status, others are left alone."""

from __future__ import annotations

import base64
import json
import time

import pytest
import redis
from aiohttp import web

import pipeline
from config.settings import load_settings
from tests.workers.delivery_support import HttpServer
from store import keys
from workers.reconcile import reconcile_once

CUSTOMER, API_KEY = "CUST-1", base64.b64encode(b"k" * 32).decode()
MESSAGING = {"ref3001": {"reference_id": "ref3001", "status": {
    "code": 200, "description": "Delivered to handset", "updated_on": "2026-11-23T07:00:00.000000Z"}}}
VERIFY = {"ref290": {"reference_id": "ref290", "verify": {"code_state": "VALID", "code_entered": "1234"}, "status": {
    "code": 200, "description": "Delivered to handset", "updated_on": "2026-11-23T07:00:01.000000Z"}}}


async def telesign(request: web.Request) -> web.Response:
    expected = "Basic " + base64.b64encode(f"{CUSTOMER}:{API_KEY}".encode()).decode()
    if request.headers.get("authorization") != expected:
        return web.Response(status=401)
    _, _, family, reference_id = request.path.split("/")
    answer = (MESSAGING if family == "messaging" else VERIFY).get(reference_id)
    return web.json_response(answer) if answer else web.json_response({"status": {"code": 9999}}, status=404)


@pytest.fixture
def fake_telesign():
    with HttpServer(telesign) as server:
        yield server


def settings_for(server: HttpServer, redis_url: str):
    return load_settings({}, redis_url=redis_url, telesign_api_url=server.url, telesign_customer_id=CUSTOMER,
                         telesign_api_keys=(API_KEY,), reconcile_after_seconds=60, reconcile_rate_per_second=100.0)


def seed_pending(client: redis.Redis) -> None:
    now = time.time()
    client.zadd(keys.PENDING_INDEX, {"ref3001": now - 600, "ref290": now - 600,  # stuck: poll
                                     "ref_recent": now - 5,  # not quiet long enough
                                     "ref_ancient": now - 13 * 3600})  # beyond Telesign's 12 h window


def test_polls_stuck_messages_only_and_applies_answers(fake_telesign, redis_url) -> None:
    client = redis.Redis.from_url(redis_url)
    seed_pending(client)
    applied: list[dict] = []

    def apply(body: bytes) -> None:
        """Stands in for decode + store until both land: records, and clears the index on a final answer."""
        answer = json.loads(body)
        applied.append(answer)
        client.zrem(keys.PENDING_INDEX, answer["reference_id"])

    assert reconcile_once(client, settings_for(fake_telesign, redis_url), apply) == 2
    assert sorted(a["reference_id"] for a in applied) == ["ref290", "ref3001"]
    assert [a.get("verify") for a in applied if a["reference_id"] == "ref290"][0]["code_state"] == "VALID"
    # ref3001 once; ref290 on messaging (404) then verify; the recent and the ancient ones never.
    assert len(fake_telesign.calls) == 3
    assert reconcile_once(client, settings_for(fake_telesign, redis_url), apply) == 0  # final now: not polled again


def test_rate_and_bound_per_run(fake_telesign, redis_url) -> None:
    client = redis.Redis.from_url(redis_url)
    client.zadd(keys.PENDING_INDEX, {f"x{i}": time.time() - 600 for i in range(5)})
    settings = load_settings({}, redis_url=redis_url, telesign_api_url=fake_telesign.url,
                             telesign_customer_id=CUSTOMER, telesign_api_keys=(API_KEY,), reconcile_after_seconds=60,
                             reconcile_max_per_run=3, reconcile_rate_per_second=10.0)
    started = time.monotonic()
    reconcile_once(client, settings, lambda body: None)
    assert time.monotonic() - started >= 0.25  # 3 polls at 10/s
    assert len(fake_telesign.calls) == 6  # 3 ids (the bound), each tried on messaging then verify


def test_beat_schedule_runs_reconcile_at_the_configured_interval(monkeypatch) -> None:
    from workers.app import make_celery

    app = make_celery(load_settings({}, reconcile_interval_seconds=42))
    entry = app.conf.beat_schedule["tspipe-reconcile"]
    assert entry["task"] == "tspipe.reconcile" and entry["schedule"] == 42.0


@pytest.mark.skipif(not hasattr(pipeline, "decode"), reason="pipeline.decode lands from the core branch")
def test_stuck_message_reaches_final_through_the_real_pipeline(fake_telesign, redis_url, monkeypatch) -> None:
    from config.settings import reset_settings_cache
    from workers.reconcile import default_apply

    monkeypatch.setenv("REDIS_URL", redis_url)
    reset_settings_cache()
    client = redis.Redis.from_url(redis_url)
    client.zadd(keys.PENDING_INDEX, {"ref3001": time.time() - 600})
    assert reconcile_once(client, settings_for(fake_telesign, redis_url), default_apply) == 1
    assert client.zscore(keys.PENDING_INDEX, "ref3001") is None


def test_status_poll_quotes_reference_id_and_one_bad_id_does_not_stop_the_run(redis_url) -> None:
    """Issue 11, item 5: ids come from callback bodies. A space must not break the run for every other
    message, `../` must not reach another Telesign endpoint, and a failing id is counted and skipped."""
    seen: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(request.raw_path)
        reference_id = request.raw_path.rsplit("/", 1)[1]
        if reference_id == "fails":
            return web.json_response({"status": {"code": 10000}}, status=500)
        if request.raw_path.startswith("/v1/messaging/"):
            answer = {"reference_id": reference_id, "status": {
                "code": 200, "description": "Delivered to handset", "updated_on": "2026-11-23T07:00:00.000000Z"}}
            return web.json_response(answer)
        return web.json_response({}, status=404)

    now = time.time()
    client = redis.Redis.from_url(redis_url)
    client.zadd(keys.PENDING_INDEX, {"has a space": now - 900, "../../v1/phoneid/15555550100": now - 800,
                                     "fails": now - 700, "bad-answer": now - 650, "ref3001": now - 600})
    applied: list[str] = []

    def apply(body: bytes) -> None:
        reference_id = json.loads(body)["reference_id"]
        if reference_id == "bad-answer":
            raise ValueError("cannot apply this answer")
        applied.append(reference_id)

    with HttpServer(handler) as server:
        assert reconcile_once(client, settings_for(server, redis_url), apply) == 3
    assert sorted(applied) == ["..%2F..%2Fv1%2Fphoneid%2F15555550100", "has%20a%20space", "ref3001"]
    assert all(path.count("/") == 3 and path.startswith(("/v1/messaging/", "/v1/verify/")) for path in seen), seen
    assert "/v1/messaging/has%20a%20space" in seen
    assert int(client.hget(keys.METRICS, "tspipe_reconcile_errors_total")) == 2  # "fails" and "bad-answer"


def test_reconcile_lock_outlives_the_run_and_is_released_only_by_its_owner(fake_telesign, redis_url) -> None:
    """The lock's TTL covers a whole run at the configured pace, and a run whose lock was taken over
    (it expired and a newer run holds it) leaves the newer run's lock alone."""
    client = redis.Redis.from_url(redis_url)
    client.zadd(keys.PENDING_INDEX, {"ref3001": time.time() - 600})
    settings = load_settings({}, redis_url=redis_url, telesign_api_url=fake_telesign.url,
                             telesign_customer_id=CUSTOMER, telesign_api_keys=(API_KEY,), reconcile_after_seconds=60,
                             reconcile_max_per_run=500, reconcile_rate_per_second=1.0, reconcile_interval_seconds=60)
    ttl_during_run: list[int] = []

    def apply(body: bytes) -> None:
        ttl_during_run.append(client.ttl(keys.RECONCILE_LOCK))
        client.set(keys.RECONCILE_LOCK, "a-newer-run")  # ours expired; another run holds the lock now

    assert reconcile_once(client, settings, apply) == 1
    assert ttl_during_run[0] >= 500  # 500 polls at 1/s
    assert client.get(keys.RECONCILE_LOCK) == b"a-newer-run"
