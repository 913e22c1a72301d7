"""The read endpoints share one token rule: the API takes only the header, the dashboard page also ?token=."""

import io
import socket

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from config import load_settings
from config.logging import configure_logging
from ingest.app import create_app


async def test_token_rules(redis_url, aiohttp_client):
    client = await aiohttp_client(create_app(load_settings({"REDIS_URL": redis_url, "TSPIPE_API_TOKEN": "t0ken"})))
    bearer = {"Authorization": "Bearer t0ken"}
    # Query API: header only, so tokens stay out of URLs and access logs.
    assert (await client.get("/v1/opt-outs/15550001111?token=t0ken")).status == 401
    refused = await client.get("/v1/opt-outs/15550001111", headers={"Authorization": "Bearer wrong"})
    assert refused.status == 401 and refused.headers["WWW-Authenticate"] == "Bearer"
    assert (await client.get("/v1/opt-outs/15550001111", headers=bearer)).status in (200, 404)
    # Dashboard: the page is loaded by URL, so ?token= works there too.
    assert (await client.get("/dashboard/data.json?token=t0ken")).status == 200
    assert (await client.get("/dashboard/data.json", headers=bearer)).status == 200
    assert (await client.get("/dashboard/data.json?token=nope")).status == 401


def _non_loopback_address() -> str | None:
    import ipaddress

    import psutil

    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family == socket.AF_INET and not ipaddress.ip_address(address.address).is_loopback:
                return address.address
    return None


async def test_without_a_token_read_api_and_dashboard_answer_loopback_clients_only(redis_url, tmp_path):
    """Issue 11, item 6: with TSPIPE_API_TOKEN unset and the default bind of 0.0.0.0, phone numbers are
    served only to this host; anyone else gets a 403 with a JSON reason, and start-up warns."""
    other = _non_loopback_address()
    if other is None:
        pytest.skip("this machine has no non-loopback IPv4 address to connect from")
    settings = load_settings({"REDIS_URL": redis_url}, spool_dir=str(tmp_path / "spool"))
    logs = io.StringIO()
    configure_logging(settings, stream=logs)
    app = create_app(settings)
    server = TestServer(app, host="0.0.0.0")
    await server.start_server()
    try:
        assert "TSPIPE_API_TOKEN is not set" in logs.getvalue()
        async with aiohttp.ClientSession() as session:
            for path in ("/v1/opt-outs", "/v1/opt-outs/15550001111", "/v1/transactions/ref-1", "/dashboard/data.json",
                         "/dashboard"):
                async with session.get(f"http://127.0.0.1:{server.port}{path}") as local:
                    assert local.status in (200, 404), path
                async with session.get(f"http://{other}:{server.port}{path}") as remote:
                    assert remote.status == 403, path
                    assert "TSPIPE_API_TOKEN" in (await remote.json())["error"]
            # Callbacks are not read endpoints: their own rule (the signature) applies from anywhere.
            async with session.post(f"http://{other}:{server.port}/callbacks/sms", data=b'{"status": {}}') as posted:
                assert posted.status == 200
    finally:
        await server.close()


async def test_read_api_answers_503_with_a_json_reason_while_redis_is_down(aiohttp_client, own_redis, tmp_path):
    """Issue 11, item 17: not a 500 with a traceback."""
    app = create_app(load_settings({"REDIS_URL": own_redis.url}, spool_dir=str(tmp_path / "spool")))
    client = await aiohttp_client(app)
    assert (await client.get("/v1/opt-outs")).status == 200
    own_redis.kill()
    for path in ("/v1/opt-outs", "/v1/opt-outs/15550001111", "/v1/transactions/ref-1", "/dashboard/data.json"):
        response = await client.get(path)
        assert response.status == 503, path
        assert response.content_type == "application/json"
        assert "store unreachable" in (await response.json())["error"]
