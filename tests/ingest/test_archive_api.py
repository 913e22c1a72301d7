"""GET /v1/events and the archive fallback of GET /v1/transactions, on the real app with real Redis and PostgreSQL."""

from __future__ import annotations

import redis

from archive.writer import Writer
from ingest.app import create_app
from tests.archive.support import connect, delivery_body, now_minus, row_of
from tests.ingest.conftest import make_settings


async def test_search_routes(aiohttp_client, redis_url, database_url, tmp_path):
    conn = connect(database_url)
    rows = [row_of(delivery_body(f"REF{i}", "+11234567890", now_minus(minutes=10 - i), code=200 if i else 203))
            for i in range(3)]
    Writer().archive(conn, rows)
    client = await aiohttp_client(create_app(make_settings(redis_url, tmp_path, database_url=database_url,
                                                           api_token="s3cret")))
    auth = {"Authorization": "Bearer s3cret"}
    assert (await client.get("/v1/events")).status == 401
    response = await client.get("/v1/events", params={"phone_number": "+1 123 456 7890", "limit": "2"}, headers=auth)
    assert response.status == 200
    page = await response.json()
    assert [e["reference_id"] for e in page["events"]] == ["REF2", "REF1"]
    response = await client.get("/v1/events", params={"phone_number": "11234567890", "cursor": page["next_cursor"],
                                                      "raw": "1"}, headers=auth)
    last = await response.json()
    assert [e["reference_id"] for e in last["events"]] == ["REF0"] and last["next_cursor"] is None
    assert last["events"][0]["raw"] == rows[0].body.decode()
    response = await client.get("/v1/events", params={"limit": "5000"}, headers=auth)
    assert response.status == 400 and "limit" in (await response.json())["error"]


async def test_transaction_answers_from_the_archive_once_redis_forgot(aiohttp_client, redis_url, database_url, tmp_path):
    conn = connect(database_url)
    pending = row_of(delivery_body("GONE1", "11234567890", now_minus(minutes=5), code=290))
    delivered = row_of(delivery_body("GONE1", "11234567890", now_minus(minutes=4), code=200))
    late_pending = row_of(delivery_body("GONE1", "11234567890", now_minus(minutes=3), code=290, extra="x"))
    Writer().archive(conn, [pending, delivered, late_pending])
    redis.Redis.from_url(redis_url).flushall()
    client = await aiohttp_client(create_app(make_settings(redis_url, tmp_path, database_url=database_url)))
    response = await client.get("/v1/transactions/GONE1")
    assert response.status == 200
    body = await response.json()
    assert body["state"]["status"]["code"] == 200  # final beats a later intermediate
    assert [h["code"] for h in body["history"]] == [290, 200, 290]
    # The shape the Redis path answers (pipeline/transaction.py), so a client sees no difference but the source.
    from pipeline.transaction import HistoryItem, MessageState

    assert set(body) == {"reference_id", "state", "history", "source"} and body["source"] == "archive"
    assert set(body["state"]) == set(MessageState.__struct_fields__)
    assert all(set(h) == set(HistoryItem.__struct_fields__) for h in body["history"])
    assert (await client.get("/v1/transactions/NEVER")).status == 404


async def test_archive_off_answers_503(aiohttp_client, redis_url, tmp_path):
    client = await aiohttp_client(create_app(make_settings(redis_url, tmp_path)))
    response = await client.get("/v1/events", params={"phone_number": "11234567890"})
    assert response.status == 503
    assert "DATABASE_URL" in (await response.json())["error"]


async def test_archive_down_answers_503_and_callbacks_still_flow(aiohttp_client, redis_url, tmp_path):
    url = "postgresql://nobody@/nothing?host=/nonexistent&connect_timeout=1"
    client = await aiohttp_client(create_app(make_settings(redis_url, tmp_path, database_url=url,
                                                           telesign_api_keys=())))
    response = await client.get("/v1/events", params={"phone_number": "11234567890"})
    assert response.status == 503
    assert (await client.post("/callbacks/sms", data=delivery_body("UP1", "1", None))).status == 200

