"""The query API on its own small aiohttp app, against a real Redis filled by the store."""

from __future__ import annotations

import redis
from aiohttp import web

from config.settings import load_settings
from tests.workers.conftest import body
from tests.conftest import fixture_bodies
from pipeline.record import Record, encode_batch
from store.state import Store
from workers.tasks import process_batch
from ingest.query_api import setup_query_api


def fill(redis_url: str) -> None:
    store = Store(redis.Redis.from_url(redis_url))
    bodies = fixture_bodies()
    process_batch(encode_batch([Record(bodies["delivery_rcs_fallback_to_sms"], 1.0)]), store)
    stops = [body("mo_whatsapp_keyword_stop", phone_number=f"1555000{i:04d}") for i in range(5)]
    process_batch(encode_batch([Record(b, 1.0) for b in stops]), store)


async def client_for(aiohttp_client, redis_url, token=None):
    app = web.Application()
    setup_query_api(app, load_settings({}, redis_url=redis_url, api_token=token))
    return await aiohttp_client(app)


async def test_transaction_and_optouts(aiohttp_client, redis_url):
    fill(redis_url)
    client = await client_for(aiohttp_client, redis_url)
    resp = await client.get("/v1/transactions/35C8B5D509BC10689196FED2AD551B8A")
    assert resp.status == 200
    data = await resp.json()
    assert data["state"]["status"]["code"] == 3000 and len(data["history"]) == 1
    resp = await client.get("/v1/transactions/NOPE")
    assert resp.status == 404 and "error" in await resp.json()

    resp = await client.get("/v1/opt-outs/15550000003")
    assert resp.status == 200
    data = await resp.json()
    assert data["opted_out"] is True and data["channel"] == "whatsapp" and data["keyword"] == "end"
    assert set(data) == {"address", "opted_out", "channel", "keyword", "updated_at"}
    assert (await client.get("/v1/opt-outs/nobody")).status == 404

    first = await (await client.get("/v1/opt-outs?limit=3")).json()
    second = await (await client.get(f"/v1/opt-outs?limit=3&cursor={first['next_cursor']}")).json()
    assert len(first["items"]) == 3 and len(second["items"]) == 2 and second["next_cursor"] is None
    assert (await client.get("/v1/opt-outs?cursor=x")).status == 400


async def test_bearer_token(aiohttp_client, redis_url):
    fill(redis_url)
    client = await client_for(aiohttp_client, redis_url, token="s3cret")
    assert (await client.get("/v1/opt-outs/15550000003")).status == 401
    resp = await client.get("/v1/opt-outs/15550000003", headers={"Authorization": "Bearer s3cret"})
    assert resp.status == 200
