"""Queue batches the way the ingress does (journalled), and recover the ones a killed worker lost."""

from __future__ import annotations

import time
import uuid

import redis

from ingest.task_message import ingest_batch_message
from pipeline.record import Record, encode_batch
from workers import journal, keys

QUEUE = "tspipe.ingest"


def enqueue(client: redis.Redis, records: list[Record], queue: str = QUEUE) -> str:
    """One batch queued and journalled in one script call, as ingest/publisher.py does; returns its task id."""
    task_id = str(uuid.uuid4())
    message = ingest_batch_message(encode_batch(records), queue, task_id)
    client.register_script(journal.ENQUEUE)(journal.enqueue_keys(queue), journal.enqueue_args(task_id, message, 30.0))
    return task_id


def settled(client: redis.Redis, queue: str = QUEUE) -> bool:
    """Nothing queued and nothing held by a worker."""
    return client.llen(queue) == 0 and client.hlen(keys.KOMBU_UNACKED) == 0


def requeue_lost(client: redis.Redis, queue: str = QUEUE) -> int:
    """What the beat sweep does after its grace period, now: queue again every batch lost in transit."""
    return journal.Sweep(client, queue, grace=30).run(now=time.time() + 3600)[0]
