"""Delivery-rate alerts end to end: an injected carrier outage raises exactly one alert naming it.

Real PostgreSQL (rollups written by the archive writer), real Redis, a real
Celery worker running the beat task, and a real HTTP destination that
receives the alert as a signed webhook of kind "alert".
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime, timedelta, timezone

import redis

from archive.writer import Writer
from store.alerts import AlertStore
from tests.archive.insight_support import CARRIERS, sms_report
from tests.archive.support import connect, row_of
from tests.workers.delivery_support import HttpServer, celery_worker, delivery_engine, destinations_env, wait_for
from tests.workers.test_delivery import dest, ok, verify

FAILING = "310-004"
WINDOW_PER_CARRIER = 60
BASELINE_PER_DAY = 10


def inject_outage(database_url: str, now: datetime) -> None:
    """Seven healthy days at this hour, then a window where every SMS to one carrier fails with 220."""
    bodies = []
    for n, carrier in enumerate(CARRIERS):
        for day in range(1, 8):
            for i in range(BASELINE_PER_DAY):
                when = now - timedelta(days=day, minutes=5, seconds=i)
                bodies.append(sms_report(f"B{day}{n}{i:029d}", 200, when, carrier))
        for i in range(WINDOW_PER_CARRIER):
            code = 220 if carrier == FAILING else 200
            bodies.append(sms_report(f"W{n}{i:030d}", code, now - timedelta(minutes=5, seconds=i), carrier))
    conn = connect(database_url)
    writer = Writer()
    rows = [row_of(b, channel="sms") for b in bodies]
    for start in range(0, len(rows), 200):
        writer.archive(conn, rows[start:start + 200])
    conn.close()


def test_carrier_outage_raises_exactly_one_alert_for_that_carrier(monkeypatch, redis_url, database_url):
    inject_outage(database_url, datetime.now(timezone.utc))
    client = redis.Redis.from_url(redis_url)
    with HttpServer(ok) as server:
        monkeypatch.setenv("DATABASE_URL", database_url)
        destinations_env(monkeypatch, redis_url, [dest("hooks", server)])
        from workers import tasks

        tasks.reset_store()
        with celery_worker() as app, delivery_engine():
            app.send_task("tspipe.alerts", queue="tspipe.ingest")
            assert wait_for(lambda: client.llen("ts:alerts") >= 1)
            # Beat runs it every minute: the same outage in the same window is not raised again.
            app.send_task("tspipe.alerts", queue="tspipe.ingest")
            assert wait_for(lambda: len(server.calls) >= 1)
            time.sleep(1.0)
    raised = [json.loads(a) for a in AlertStore(client).recent()]
    named = {(a["dimension"], a["key"]) for a in raised}
    assert [a for a in raised if a["dimension"] == "carrier"] == [a for a in raised if a["key"] == FAILING]
    assert ("carrier", FAILING) in named and sum(1 for a in raised if a["key"] == FAILING) == 1
    # The failing carrier pulls its country down (2 of 3 US carriers deliver); the channel stays within 20 points.
    assert named == {("carrier", FAILING), ("country", "US")}
    alert = next(a for a in raised if a["key"] == FAILING)
    assert alert["kind"] == "alert" and alert["label"] == "Verizon (310-004)"
    assert alert["delivery_rate"] == 0 and alert["baseline_rate"] == 1 and alert["final"] == WINDOW_PER_CARRIER
    # Fanned out like any event: one signed webhook per alert, no repeats.
    posted = [json.loads(body) for _, body, _ in server.calls]
    assert sorted((a["dimension"], a["key"]) for a in posted) == sorted(named)
    assert all(verify(h, b) for h, b, _ in server.calls)
    assert client.hget("ts:metrics", 'tspipe_alerts_total{dimension="carrier"}') == b"1"
    scrape = asyncio.run(scrape_metrics(redis_url)).decode()
    assert 'tspipe_alerts_total{dimension="carrier"} 1\n' in scrape
    assert 'tspipe_alerts_total{dimension="country"} 1\n' in scrape


async def scrape_metrics(redis_url: str) -> bytes:
    """What /metrics on the web process adds from the cluster's counters."""
    import redis.asyncio as aioredis

    from ingest.cluster_metrics import cluster_metrics

    client = aioredis.Redis.from_url(redis_url)
    try:
        return await cluster_metrics(client, "tspipe.ingest")
    finally:
        await client.aclose()
