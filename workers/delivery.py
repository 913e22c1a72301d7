"""The delivery task: one signed POST of one event (or one batch) to one destination.

Thin by design: decide (circuit open? too old? rate limited?), POST, then on
failure either schedule the next attempt (exponential backoff, full jitter,
Retry-After honoured) or write a dead letter. The next attempt is a fresh
message on the destination's own queue, so a waiting retry holds no worker.
"""

from __future__ import annotations

import random
import time

import msgspec
import redis
from celery import Celery, current_app, current_task, shared_task

from config import get_settings
from store import connection, deadletters, keys
from workers import circuit
from workers.destinations import MAX_DELAY_SECONDS, Destination, by_name
from workers.webhooks import DeliveryFailed, backoff, batch_id, post

DELIVER_TASK = "tspipe.deliver"


class _IdOnly(msgspec.Struct):
    event_id: str


_one = msgspec.json.Decoder(_IdOnly)
_many = msgspec.json.Decoder(list[_IdOnly])


def redis_client() -> redis.Redis:
    return connection.shared(get_settings().redis_url)


def message_id(body: bytes) -> str:
    """The webhook-id: derived from the body's event ids, so every retry and replay carries the same one."""
    if body.lstrip().startswith(b"["):
        return batch_id([e.event_id for e in _many.decode(body)])
    return batch_id([_one.decode(body).event_id])


def celery_app() -> Celery:
    """The app of the running task (a threads or solo worker does not make its app current), else the current one."""
    task = current_task._get_current_object() if current_task else None
    return task.app if task is not None else current_app._get_current_object()


def enqueue(dest: Destination, body: bytes, attempt: int = 1, first_at: float | None = None,
            countdown: float = 0, producer: object = None) -> None:
    celery_app().send_task(DELIVER_TASK, args=(dest.name, body, attempt, first_at or time.time()),
                           queue=dest.queue, countdown=countdown or None, producer=producer)


def _rate_wait(client: redis.Redis, dest: Destination) -> float:
    """A fixed window shared by all workers ("N/s" or "N/m", like Celery's); seconds until the next one when full."""
    if not dest.rate_limit:
        return 0.0
    count, _, unit = dest.rate_limit.partition("/")
    window = 60 if unit.startswith("m") else 1
    now = time.time()
    key = keys.RATE.format(name=dest.name, window=int(now // window))
    used = client.incr(key)
    if used == 1:
        client.expire(key, window + 1)
    return 0.0 if used <= float(count) else window - (now % window)


def attempt_delivery(dest: Destination, body: bytes, attempt: int, first_at: float) -> str:
    """One attempt; returns "delivered", "deferred", "retry" or "dead". Plain function: testable without a worker."""
    client = redis_client()
    if time.time() - first_at > dest.max_age_seconds:
        _dead(client, dest, body, f"older than max_age_seconds={dest.max_age_seconds}", attempt - 1)
        return "dead"
    wait = circuit.wait_seconds(client, dest.name) or _rate_wait(client, dest)
    if wait > 0:
        # Jittered so the events held back by an open circuit do not all return in the same second.
        enqueue(dest, body, attempt, first_at, countdown=max(wait, 0.1) * random.uniform(1.0, 1.2))
        return "deferred"
    try:
        post(dest.url, dest.secret, message_id(body), body, dest.timeout)
    except DeliveryFailed as exc:
        if exc.retryable:
            circuit.record_failure(client, dest.name, dest.circuit_threshold, dest.circuit_cooldown)
        if not exc.retryable or attempt >= dest.max_attempts:
            _dead(client, dest, body, str(exc), attempt)
            return "dead"
        delay = max(min(exc.retry_after or 0.0, MAX_DELAY_SECONDS), backoff(attempt, dest.backoff_base, dest.backoff_max))
        enqueue(dest, body, attempt + 1, first_at, countdown=delay)
        return "retry"
    circuit.record_success(client, dest.name)
    return "delivered"


def _dead(client: redis.Redis, dest: Destination, body: bytes, error: str, attempts: int) -> None:
    deadletters.add(client, deadletters.new_entry("destination", dest.name, body, error, attempts))


@shared_task(name=DELIVER_TASK, ignore_result=True, acks_late=True)
def deliver(name: str, body: bytes, attempt: int, first_at: float) -> str:
    dest = by_name(name)
    if dest is None:
        # The destination was removed from the config: keep the event rather than drop it.
        deadletters.add(redis_client(), deadletters.new_entry("destination", name, body, "unknown destination", attempt - 1))
        return "dead"
    return attempt_delivery(dest, body, attempt, first_at)
