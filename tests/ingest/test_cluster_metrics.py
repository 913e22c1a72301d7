"""/metrics on the web process shows what the workers counted, read from the real Redis."""

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
