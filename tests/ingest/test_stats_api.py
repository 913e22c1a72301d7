"""GET /v1/stats over real HTTP against a real PostgreSQL filled by the archive writer."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from aiohttp import web

from archive.writer import Writer
from config.settings import load_settings
from ingest.archive_api import setup_archive_api
from ingest.stats_api import setup_stats_api
from tests.archive.insight_support import base_time, sms_report
from tests.archive.support import connect, row_of


def fill(database_url: str):
    conn = connect(database_url)
    t0 = base_time()
    bodies = []
    for n in range(20):
        carrier = ["310-004", "310-260", "262-01", "234-15"][n % 4]
        code = 220 if carrier == "310-260" else 200
        ref = f"{n:032X}"
        bodies.append(sms_report(ref, 203, t0 + timedelta(seconds=n), carrier))
        bodies.append(sms_report(ref, code, t0 + timedelta(seconds=n + 3 + n % 5), carrier, price="0.01", parts=2,
                                 currency="EUR" if carrier == "262-01" else "USD"))
    Writer().archive(conn, [row_of(b, channel="sms") for b in bodies])
    return t0


async def client_for(aiohttp_client, database_url, token=None):
    app = web.Application()
    settings = load_settings({}, database_url=database_url, api_token=token)
    setup_archive_api(app, settings)
    setup_stats_api(app, settings)
    return await aiohttp_client(app)


async def test_stats_by_carrier_json_and_csv(aiohttp_client, database_url):
    t0 = fill(database_url)
    client = await client_for(aiohttp_client, database_url)
    since = (t0 - timedelta(hours=1)).isoformat()
    resp = await client.get("/v1/stats", params={"group_by": "carrier", "since": since})
    assert resp.status == 200
    groups = {g["key"]: g for g in (await resp.json())["groups"]}
    assert set(groups) == {"310-004", "310-260", "262-01", "234-15"}
    bad = groups["310-260"]
    assert (bad["sent"], bad["final"], bad["failed"], bad["delivery_rate"]) == (5, 5, 5, 0.0)
    assert bad["failures"] == [{"code": 220, "description": "Gateway/network cannot route message", "count": 5}]
    good = groups["310-004"]
    assert good["delivery_rate"] == 1.0 and good["spend"] == {"USD": "0.1"} and good["label"] == "Verizon (310-004)"
    assert set(good["time_to_final_s"]) == {"p50", "p90", "p99"} and good["time_to_final_s"]["p50"] > 1
    assert groups["262-01"]["spend"] == {"EUR": "0.1"}
    for field in ("key", "sent", "final", "delivered", "read", "failed", "delivery_rate", "time_to_final_s", "spend"):
        assert all(field in g for g in groups.values())

    resp = await client.get("/v1/stats", params={"group_by": "carrier", "since": since, "format": "csv"})
    assert resp.status == 200 and resp.content_type == "text/csv"
    rows = {r["key"]: r for r in csv.DictReader(io.StringIO(await resp.text()))}
    assert set(rows) == set(groups)
    assert rows["310-260"]["failed"] == "5" and rows["310-004"]["spend_USD"] == "0.1" and rows["262-01"]["spend_EUR"] == "0.1"

    days = (await (await client.get("/v1/stats", params={"group_by": "day", "since": since})).json())["groups"]
    assert [d["sent"] for d in days] == [20] and days[0]["key"] == t0.strftime("%Y-%m-%d")


async def test_bad_parameters_are_400_with_a_reason(aiohttp_client, database_url):
    client = await client_for(aiohttp_client, database_url)
    for params, words in (
        ({}, "group_by is required"),
        ({"group_by": "planet"}, "not one of channel, country, carrier, status_code, day, hour"),
        ({"group_by": "channel", "since": "noon"}, "since"),
        ({"group_by": "channel", "channel": "fax"}, "channel"),
        ({"group_by": "channel", "format": "xml"}, "format"),
    ):
        resp = await client.get("/v1/stats", params=params)
        assert resp.status == 400
        assert words in (await resp.json())["error"]


async def test_token_and_archive_off(aiohttp_client, database_url):
    connect(database_url).close()
    client = await client_for(aiohttp_client, database_url, token="s3cret")
    assert (await client.get("/v1/stats", params={"group_by": "channel"})).status == 401
    resp = await client.get("/v1/stats", params={"group_by": "channel"}, headers={"Authorization": "Bearer s3cret"})
    assert resp.status == 200 and (await resp.json()) == {"groups": []}

    app = web.Application()
    setup_archive_api(app, load_settings({}))
    setup_stats_api(app, load_settings({}))
    off = await aiohttp_client(app)
    resp = await off.get("/v1/stats", params={"group_by": "channel"})
    assert resp.status == 503 and "DATABASE_URL" in (await resp.json())["error"]
