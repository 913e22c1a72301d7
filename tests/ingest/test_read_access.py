"""The read endpoints share one token rule: the API takes only the header, the dashboard page also ?token=."""

from config import load_settings
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
