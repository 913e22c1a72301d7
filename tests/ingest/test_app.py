"""The ingress against a real Redis: routes, answers, and the queue content byte for byte."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ingest.app import create_app
from tests.conftest import fixture_bodies
from tests.ingest.conftest import make_settings, signed
from tests.ingest.queue import queued_batches, queued_bodies
from pipeline.signature import sign


async def test_every_fixture_is_queued_byte_for_byte(client, redis_url: str) -> None:
    bodies = fixture_bodies()
    assert bodies
    for name, body in bodies.items():
        response = await client.post("/callbacks", data=body, headers=signed(body))
        assert response.status == 200, name
        assert await response.read() == b"ok"
    assert sorted(queued_bodies(redis_url)) == sorted(bodies.values())


async def test_channel_route_sets_hint(client, redis_url: str) -> None:
    body = b'{"status": {"code": 200}}'
    response = await client.post("/callbacks/whatsapp", data=body, headers={"X-TS-Authorization": signed(body)["Authorization"]})
    assert response.status == 200
    [[record]] = queued_batches(redis_url)
    assert record.channel_hint == "whatsapp" and record.body == body and record.request_id
    assert record.received_at > 0


async def test_unknown_channel_and_path_and_method(client) -> None:
    body = b"{}"
    response = await client.post("/callbacks/fax", data=body, headers=signed(body))
    assert response.status == 404
    assert "unknown channel" in (await response.json())["error"]
    assert (await client.post("/nope", data=body)).status == 404
    assert (await client.get("/callbacks")).status == 405


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "TSA CUST-1:" + sign(b"forged-key", b'{"a": 1}')},
        {"Authorization": "TSA OTHER:" + signed(b'{"a": 1}')["Authorization"].split(":", 1)[1]},
        {"Authorization": signed(b'{"a": 1}')["Authorization"][:-10]},
        {"Authorization": "TSA CUST-1:%%%not-base64%%%"},
        signed(b'{"a": 2}'),
    ],
    ids=["missing", "forged", "wrong-customer", "truncated", "non-base64", "other-body"],
)
async def test_bad_signature_is_401_and_nothing_written(client, redis_url: str, headers: dict[str, str]) -> None:
    response = await client.post("/callbacks", data=b'{"a": 1}', headers=headers)
    assert response.status == 401
    assert (await response.json())["error"]
    assert queued_bodies(redis_url) == []
    metrics = await (await client.get("/metrics")).text()
    assert "tspipe_ingest_signature_failures_total" in metrics


async def test_contract_vector_over_http(aiohttp_client, redis_url: str, tmp_path: Path) -> None:
    app = create_app(make_settings(redis_url, tmp_path, telesign_customer_id=None))
    client = await aiohttp_client(app)
    body = b"{'test': 123}"
    response = await client.post("/callbacks", data=body, headers={"Authorization": "B97g3N9lPdVaptvifxRau7bzVAC5hhRBZ6HKXABN744="})
    assert response.status == 200
    assert queued_bodies(redis_url) == [body]


async def test_no_key_configured_accepts_unsigned(aiohttp_client, redis_url: str, tmp_path: Path) -> None:
    client = await aiohttp_client(create_app(make_settings(redis_url, tmp_path, telesign_api_keys=())))
    assert (await client.post("/callbacks", data=b"{}")).status == 200
    assert queued_bodies(redis_url) == [b"{}"]


async def test_oversized_is_413(aiohttp_client, redis_url: str, tmp_path: Path) -> None:
    client = await aiohttp_client(create_app(make_settings(redis_url, tmp_path, max_body_bytes=100)))
    body = b"x" * 101
    response = await client.post("/callbacks", data=body, headers=signed(body))
    assert response.status == 413

    async def chunks():  # no Content-Length: the limit is enforced while reading
        for _ in range(10):
            yield b"y" * 50

    response = await client.post("/callbacks", data=chunks(), headers={"Authorization": "x"})
    assert response.status == 413
    ok = b"z" * 100
    assert (await client.post("/callbacks", data=ok, headers=signed(ok))).status == 200
    assert queued_bodies(redis_url) == [ok]


async def test_concurrent_requests_share_a_batch(aiohttp_client, redis_url: str, tmp_path: Path) -> None:
    client = await aiohttp_client(create_app(make_settings(redis_url, tmp_path, batch_max_wait_ms=20.0, batch_max_records=16)))
    bodies = [b'{"n": %d}' % i for i in range(50)]
    responses = await asyncio.gather(*(client.post("/callbacks", data=b, headers=signed(b)) for b in bodies))
    assert [r.status for r in responses] == [200] * 50
    batches = queued_batches(redis_url)
    assert max(len(b) for b in batches) > 1
    assert max(len(b) for b in batches) <= 16
    assert sorted(r.body for b in batches for r in b) == sorted(bodies)
    metrics = await (await client.get("/metrics")).text()
    assert 'tspipe_http_requests_total{route="/callbacks",status="200"} 50.0' in metrics
    assert "tspipe_ingest_batch_size_bucket" in metrics
    assert "tspipe_ingest_write_seconds_bucket" in metrics
    assert "tspipe_ingest_spool_bytes 0.0" in metrics


async def test_back_pressure_503(aiohttp_client, redis_url: str, tmp_path: Path) -> None:
    client = await aiohttp_client(create_app(make_settings(redis_url, tmp_path, max_pending_requests=2, batch_max_wait_ms=200.0, telesign_api_keys=())))
    responses = await asyncio.gather(*(client.post("/callbacks", data=b"{}") for _ in range(6)))
    statuses = sorted(r.status for r in responses)
    assert statuses.count(200) == 2 and statuses.count(503) == 4
    assert len(queued_bodies(redis_url)) == 2


async def test_health_and_readiness(client) -> None:
    assert (await client.get("/healthz")).status == 200
    response = await client.get("/readyz")
    assert response.status == 200
    assert (await response.json())["ready"] is True


async def test_readyz_503_when_redis_unreachable(aiohttp_client, tmp_path: Path) -> None:
    client = await aiohttp_client(create_app(make_settings("redis://127.0.0.1:1/0", tmp_path)))
    response = await client.get("/readyz")
    assert response.status == 503
    assert (await response.json())["redis"] == "unreachable"


async def test_warns_at_startup_without_key(aiohttp_client, redis_url: str, tmp_path: Path) -> None:
    from structlog.testing import capture_logs

    with capture_logs() as logs:
        await aiohttp_client(create_app(make_settings(redis_url, tmp_path, telesign_api_keys=())))
    assert any("NOT authenticated" in entry["event"] and entry["log_level"] == "warning" for entry in logs)


async def test_refusals_are_counted_by_status(client) -> None:
    await client.post("/callbacks", data=b"{}")
    await client.post("/callbacks/fax", data=b"{}")
    await client.get("/healthz")
    metrics = await (await client.get("/metrics")).text()
    assert 'tspipe_http_requests_total{route="/callbacks",status="401"} 1.0' in metrics
    assert 'tspipe_http_requests_total{route="/callbacks/{channel}",status="404"} 1.0' in metrics
    assert 'tspipe_http_requests_total{route="/healthz",status="200"} 1.0' in metrics
    assert 'tspipe_ingest_signature_failures_total{reason="missing"} 1.0' in metrics


async def test_unrouted_answers_as_aiohttp_would_and_is_counted(client) -> None:
    """No middleware counts these: answer_unrouted() must give aiohttp's own 404 and 405 answers."""
    not_found = await client.post("/nope/deeper", data=b"{}")
    assert not_found.status == 404 and await not_found.text() == "404: Not Found"
    for method, path, allow in (("GET", "/callbacks", "POST"), ("PUT", "/callbacks/sms", "POST"),
                                ("POST", "/healthz", "GET,HEAD"), ("DELETE", "/", "GET,HEAD")):
        response = await client.request(method, path)
        assert response.status == 405, (method, path)
        assert sorted(response.headers["Allow"].split(",")) == sorted(allow.split(",")), (method, path)
    metrics = await (await client.get("/metrics")).text()
    assert 'tspipe_http_requests_total{route="unmatched",status="404"} 1.0' in metrics
    assert 'tspipe_http_requests_total{route="unmatched",status="405"} 4.0' in metrics
    assert 'tspipe_http_requests_total{route="/metrics",status="200"}' not in metrics  # counted after it answered
