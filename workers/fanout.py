"""Fan-out: hand newly applied events to every destination and plug-in whose filter wants them.

Called by the batch task with the events it just applied (never duplicates,
thanks to dedup), so each matching event is enqueued once per target. Each
destination has its own Redis queue, read by the delivery engine (`tspipe
deliver`), and all of them are written in one round trip; each delivery is
at-least-once, and order is not promised (webhook-id lets receivers dedupe).
Plug-ins are Celery tasks, sent to the queue they declare.
"""

from __future__ import annotations

import msgspec

from pipeline.event import EVENT_ENCODER, Event
import redis

from workers.delivery import celery_app, enqueue, redis_client
from workers.destinations import load_destinations
from workers.plugins import load_plugins


def _chunks(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def has_targets() -> bool:
    """Whether any destination or plug-in is configured: without one, fan-out needs no outbox."""
    return bool(load_destinations()) or bool(load_plugins())


def encode(event: Event, current: bool) -> bytes:
    """The event's JSON plus `current`: whether it became its message's current state when applied.

    A late, older event (a "delivered" arriving after "read") is still sent,
    with `current: false`, so a receiver keeping a status per message can ignore it.
    """
    return EVENT_ENCODER.encode(event)[:-1] + (b',"current":true}' if current else b',"current":false}')


def fan_out(events: list[Event], current: set[str] | frozenset[str] = frozenset(),
            client: redis.Redis | None = None) -> None:
    """Enqueue each event for every matching target; `current` holds the ids of events that are their message's state."""
    if not events:
        return
    encoded = {e.event_id: encode(e, e.event_id in current) for e in events}
    bodies = []
    for dest in load_destinations():
        wanted = [encoded[e.event_id] for e in events if dest.filter.matches(e)]
        chunks = _chunks(wanted, dest.batch_size)
        bodies.append((dest, [c[0] if dest.batch_size == 1 else b"[" + b",".join(c) + b"]" for c in chunks]))
    if bodies:
        enqueue(client or redis_client(), bodies)
    plugins = load_plugins()
    if not plugins:
        return
    app = celery_app()
    # One broker connection for the whole batch instead of one checkout per message.
    with app.producer_or_acquire() as producer:
        for plugin in plugins:
            wanted = [msgspec.json.decode(encoded[e.event_id]) for e in events if plugin.filter.matches(e)]
            if not wanted:
                continue
            if plugin.batch:
                app.send_task(plugin.name, args=(wanted,), queue=plugin.queue, producer=producer)
            else:
                for item in wanted:
                    app.send_task(plugin.name, args=(item,), queue=plugin.queue, producer=producer)
