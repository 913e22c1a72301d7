"""The hand-built task message is the one Celery would send, and a real Celery worker consumes it."""

from __future__ import annotations

import base64
import json
import time

import msgspec
import redis
from celery.contrib.testing.worker import start_worker

from config import load_settings
from config.settings import reset_settings_cache
from ingest.task_message import ingest_batch_message
from pipeline.record import INGEST_BATCH_TASK, Record, encode_batch
from tests.conftest import fixture_bodies
from store import keys
from workers import tasks
from workers.app import get_app, make_celery

QUEUE = "tspipe.ingest"
# Fresh per message (or, for reply_to, per Celery app object): never compared.
PER_MESSAGE = {("headers", "id"), ("headers", "root_id"), ("properties", "correlation_id"),
               ("properties", "delivery_tag"), ("properties", "reply_to")}


def _celery_message(redis_url: str, blob: bytes) -> bytes:
    """What the ingress published before: Celery's send_task through kombu, as it called it."""
    celery = make_celery(load_settings({}, redis_url=redis_url))
    with celery.connection_for_write() as connection:
        celery.send_task(INGEST_BATCH_TASK, args=(blob,), queue=QUEUE, producer=celery.amqp.Producer(connection),
                         retry=False, argsrepr="(<batch>,)", kwargsrepr="{}")
    client = redis.Redis.from_url(redis_url)
    try:
        (raw,) = client.lrange(QUEUE, 0, -1)
        client.delete(QUEUE)
    finally:
        client.close()
    return raw


def _without_ids(message: dict) -> dict:
    for section, key in PER_MESSAGE:
        assert message[section][key], (section, key)
        message[section][key] = "<fresh>"
    return message


def test_same_message_as_celery_send_task(redis_url: str) -> None:
    blob = encode_batch([Record(body=b'{"status": {}}', received_at=1.5, channel_hint="sms", request_id="r1")])
    theirs = json.loads(_celery_message(redis_url, blob))
    ours = json.loads(ingest_batch_message(blob, QUEUE))
    assert ours["headers"]["id"] == ours["headers"]["root_id"] == ours["properties"]["correlation_id"]
    assert _without_ids(ours) == _without_ids(theirs)
    args, kwargs, _embed = msgspec.msgpack.decode(base64.b64decode(ours["body"]))
    assert args == [blob] and kwargs == {}


def test_real_celery_worker_consumes_it(redis_url: str, monkeypatch) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    reset_settings_cache()
    tasks.reset_store()
    get_app().conf.broker_url = redis_url  # the app built before this test read another REDIS_URL
    bodies = list(fixture_bodies().values())
    client = redis.Redis.from_url(redis_url)
    try:
        client.lpush(QUEUE, ingest_batch_message(encode_batch([Record(b, time.time()) for b in bodies]), QUEUE))
        with start_worker(get_app(), pool="solo", perform_ping_check=False, shutdown_timeout=10):
            deadline = time.monotonic() + 15
            while client.llen(keys.RECENT_EVENTS) < len(bodies) and time.monotonic() < deadline:
                time.sleep(0.05)
        assert client.llen(keys.RECENT_EVENTS) == len(bodies)
        assert client.llen(QUEUE) == 0
    finally:
        tasks.reset_store()
        client.close()
