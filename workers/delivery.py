"""Handing webhook deliveries to the delivery engine (deliver/engine.py), from the processes that apply callbacks.

`enqueue` puts jobs on each destination's Redis queue in one round trip and
returns; the POST happens in the engine process (`tspipe deliver`), so no
process that applies callbacks ever waits for a receiver.

`tspipe.deliver` is the Celery task of the design before the engine. It is
kept only so that messages still sitting in the `tspipe.dest.<name>` queues
after an upgrade move to the engine's queue instead of being lost.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import redis
import structlog
from celery import shared_task

from config import get_settings
from config.destinations import Destination, by_name
from store import connection, deadletters, delivery_queue

log = structlog.get_logger("tspipe.delivery")

DELIVER_TASK = "tspipe.deliver"


def redis_client() -> redis.Redis:
    return connection.shared(get_settings().redis_url)


def enqueue(client: redis.Redis, bodies: Sequence[tuple[Destination, list[bytes]]], first_at: float | None = None,
            attempt: int = 1, traceparents: Sequence[Sequence[str | None]] | None = None) -> int:
    """Queue each body for its destination (one round trip for all); returns how many were queued.

    A destination already holding `max_queued` deliveries takes no more: the
    rest are dead-lettered with the reason, so nothing is dropped silently.
    `traceparents` (tracing on) gives each body's trace context, in the same shape as `bodies`.
    """
    now = first_at or time.time()
    traces = traceparents or [[None] * len(group) for _, group in bodies]
    batches = [(dest.name, dest.max_queued, [delivery_queue.new_job(b, attempt, now, t) for b, t in zip(group, trace)])
               for (dest, group), trace in zip(bodies, traces) if group]
    taken = delivery_queue.enqueue(client, batches)
    overflow = []
    for (dest, group), count in zip([(d, g) for d, g in bodies if g], taken):
        refused = group[count:]
        if refused:
            log.warning("delivery queue full: deliveries dead-lettered", destination=dest.name,
                        deliveries=len(refused), max_queued=dest.max_queued)
        overflow += [deadletters.new_entry("destination", dest.name, body,
                                           f"not queued: {dest.max_queued} deliveries already wait for this destination "
                                           "(max_queued)", 0) for body in refused]
    for entry in overflow:
        deadletters.add(client, entry)  # within TSPIPE_DEADLETTER_MAX_BYTES
    return sum(taken)


@shared_task(name=DELIVER_TASK, ignore_result=True, acks_late=True)
def deliver(name: str, body: bytes, attempt: int, first_at: float) -> str:
    """A delivery queued by the Celery design before the engine: hand it to the engine's queue."""
    dest = by_name(name)
    if dest is None:
        # The destination was removed from the config: keep the event rather than drop it.
        deadletters.add(redis_client(), deadletters.new_entry("destination", name, body, "unknown destination", attempt - 1))
        return "dead"
    enqueue(redis_client(), [(dest, [body])], first_at=first_at, attempt=attempt)
    return "queued"
