"""/metrics on the web process shows what the workers counted, read from the real Redis."""

import base64
from datetime import datetime, timezone

from prometheus_client.parser import text_string_to_metric_families

from config import load_settings
from ingest.app import create_app
from pipeline import decode
from pipeline.record import Record, encode_batch
from tests.conftest import fixture_bodies
from workers.tasks import process_batch
from store.state import Store


def _samples(text: str) -> dict[str, float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            out[f"{sample.name}{{{labels}}}"] = sample.value
    return out


async def test_worker_counters_appear_on_web_metrics(redis_url, aiohttp_client):

    settings = load_settings({"REDIS_URL": redis_url})
    now = datetime.now(timezone.utc).timestamp()
    records = [Record(body=b, received_at=now, channel_hint="sms", request_id=str(i)) for i, b in enumerate(fixture_bodies().values())]
    records.append(Record(body=b"not json", received_at=now, request_id="bad"))
    store = Store.from_settings(settings)
    process_batch(encode_batch(records), store=store)
    process_batch(encode_batch(records[:2]), store=store)  # duplicates

    client = await aiohttp_client(create_app(settings))
    response = await client.get("/metrics")
    assert response.status == 200
    samples = _samples(await response.text())
    assert samples["tspipe_cluster_up{}"] == 1
    assert samples["tspipe_quarantine_size{}"] == 1
    assert samples["tspipe_journal_batches{}"] == 0 and samples["tspipe_journal_stuck{}"] == 0
    assert samples["tspipe_dedup_hits_total{}"] == 2
    inbound = sum(v for k, v in samples.items() if k.startswith("tspipe_events_total{") and "kind=inbound" in k)
    assert inbound == 8
    assert samples['tspipe_processing_lag_seconds_count{}'] == len(fixture_bodies())
    assert "tspipe_ingest_spool_bytes{}" in samples  # the ingress figures are in the same scrape
    assert decode(fixture_bodies()["read_notification"]).kind.value == "read"


async def test_metrics_still_answer_when_redis_is_down(own_redis, aiohttp_client):
    settings = load_settings({"REDIS_URL": own_redis.url})
    client = await aiohttp_client(create_app(settings))
    own_redis.kill()
    response = await client.get("/metrics")
    assert response.status == 200
    assert "tspipe_cluster_up 0" in await response.text()


async def test_archive_backlog_and_lag_on_metrics(redis_url, database_url, aiohttp_client, monkeypatch):
    from config.settings import reset_settings_cache
    from store.archive_backlog import Backlog
    from workers.archiver import Archiver

    monkeypatch.setenv("DATABASE_URL", database_url)
    reset_settings_cache()
    settings = load_settings({"REDIS_URL": redis_url, "DATABASE_URL": database_url})
    now = datetime.now(timezone.utc).timestamp()
    records = [Record(body=b, received_at=now, request_id=str(i)) for i, b in enumerate(fixture_bodies().values())]
    store = Store.from_settings(settings)
    process_batch(encode_batch(records), store=store)
    client = await aiohttp_client(create_app(settings))
    samples = _samples(await (await client.get("/metrics")).text())
    assert samples["tspipe_archive_backlog_batches{}"] == 1
    assert samples["tspipe_archive_backlog_bytes{}"] > 1000
    assert samples["tspipe_archive_backlog_oldest_seconds{}"] >= 0
    archiver = Archiver(Backlog(store.client), database_url, block_ms=10)
    archiver.backlog.ensure_group()
    assert archiver.run_once() == len(records)
    archiver._close()
    samples = _samples(await (await client.get("/metrics")).text())
    assert samples["tspipe_archive_backlog_batches{}"] == 0 and samples["tspipe_archive_backlog_bytes{}"] == 0
    assert samples["tspipe_archive_lag_seconds_count{}"] == len(records)
    assert samples["tspipe_archive_events_total{}"] == len(records)


async def test_each_destination_has_its_queue_depth_and_circuit_state(redis_url, aiohttp_client):
    """Per configured destination: its jobs ready, delayed and in flight, and its circuit (0 closed, 1 half-open, 2 open)."""
    import json
    import time

    import redis

    from store import circuit, delivery_queue, keys

    secret = "whsec_" + base64.b64encode(b"k" * 24).decode()
    destinations = [{"name": name, "url": "http://127.0.0.1:9/", "secret": secret} for name in ("crm", "billing", "idle")]
    settings = load_settings({"REDIS_URL": redis_url, "TSPIPE_DESTINATIONS": json.dumps(destinations)})
    sync = redis.Redis.from_url(redis_url)
    delivery_queue.enqueue(sync, [("crm", 100, [delivery_queue.new_job(b'{"event_id": "%d"}' % i) for i in range(3)])])
    sync.zadd(keys.DELIVERY_DELAYED.format(name="crm"), {delivery_queue.new_job(b'{"event_id": "r"}'): time.time() + 60})
    sync.hset(keys.DELIVERY_INFLIGHT.format(name="billing"), "job", b"held")
    circuit.Breaker(sync, "crm", threshold=1, cooldown=30).record(0, circuit.FAILURE)  # open for 30 s
    circuit.Breaker(sync, "billing", threshold=1, cooldown=30).record(0, circuit.FAILURE, now=time.time() - 60)

    client = await aiohttp_client(create_app(settings))
    text = await (await client.get("/metrics")).text()
    samples = _samples(text)
    depth = {(d, s): samples[f"tspipe_delivery_queue_depth{{destination={d},state={s}}}"]
             for d in ("crm", "billing", "idle") for s in ("ready", "delayed", "in_flight")}
    assert depth == {("crm", "ready"): 3, ("crm", "delayed"): 1, ("crm", "in_flight"): 0,
                     ("billing", "ready"): 0, ("billing", "delayed"): 0, ("billing", "in_flight"): 1,
                     ("idle", "ready"): 0, ("idle", "delayed"): 0, ("idle", "in_flight"): 0}
    state = {d: samples[f"tspipe_delivery_circuit_state{{destination={d}}}"] for d in ("crm", "billing", "idle")}
    assert state == {"crm": 2, "billing": 1, "idle": 0}
    assert text.count("# TYPE tspipe_delivery_queue_depth gauge") == 1
    sync.close()


async def test_a_bad_destinations_setting_leaves_metrics_without_destinations(redis_url, aiohttp_client):
    """`tspipe web` refuses it before building the app; an app built anyway still scrapes."""
    client = await aiohttp_client(create_app(load_settings({"REDIS_URL": redis_url, "TSPIPE_DESTINATIONS": "not json"})))
    text = await (await client.get("/metrics")).text()
    assert "tspipe_cluster_up 1" in text and "tspipe_delivery_" not in text
