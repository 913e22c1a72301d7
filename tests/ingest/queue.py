"""Read back what the ingress wrote: the Celery Redis transport's list, decoded to Records."""

from __future__ import annotations

import base64
import json

import msgspec
import redis

from pipeline.record import INGEST_BATCH_TASK, Record, decode_batch


def queued_batches(redis_url: str, queue: str = "tspipe.ingest") -> list[list[Record]]:
    """Every batch in the queue, oldest first (kombu LPUSHes, workers BRPOP)."""
    client = redis.Redis.from_url(redis_url)
    try:
        raw = client.lrange(queue, 0, -1)
    finally:
        client.close()
    batches = []
    for item in reversed(raw):
        message = json.loads(item)
        assert message["headers"]["task"] == INGEST_BATCH_TASK
        assert message["properties"]["body_encoding"] == "base64"
        args, kwargs, _embed = msgspec.msgpack.decode(base64.b64decode(message["body"]))
        assert kwargs == {} and len(args) == 1
        batches.append(decode_batch(args[0]))
    return batches


def queued_bodies(redis_url: str, queue: str = "tspipe.ingest") -> list[bytes]:
    return [record.body for batch in queued_batches(redis_url, queue) for record in batch]
