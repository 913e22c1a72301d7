"""Fan-out: hand newly applied events to every destination and plug-in whose filter wants them.

Called by the batch task with the events it just applied (never duplicates,
thanks to dedup), so each matching event is enqueued once per target. Each
destination has its own queue; each enqueued message is delivered
at-least-once, and order is not promised (webhook-id lets receivers dedupe).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager as ContextManager
from contextlib import nullcontext

import msgspec

from pipeline.alerts import ALERT_ENCODER
from pipeline.event import EVENT_ENCODER, Event
from workers.delivery import celery_app, enqueue
from workers.destinations import load_destinations
from workers.plugins import load_plugins


def _chunks(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def has_targets() -> bool:
    """Whether any destination or plug-in is configured: without one, fan-out needs no outbox."""
    return bool(load_destinations()) or bool(load_plugins())


def _wants_alerts(filter) -> bool:
    """Alerts go where kind "alert" is asked for, or where nothing is filtered at all."""
    return "alert" in filter.kinds or filter == type(filter)()


def fan_out_alerts(alerts: list) -> None:
    """Delivery-rate alerts (pipeline/alerts.py), sent like events: same queues, signing and retries."""
    if not alerts:
        return
    encoded = [ALERT_ENCODER.encode(a) for a in alerts]
    app = celery_app()
    with app.producer_or_acquire() as producer:
        for dest in load_destinations():
            if _wants_alerts(dest.filter):
                for chunk in _chunks(encoded, dest.batch_size):
                    body = chunk[0] if dest.batch_size == 1 else b"[" + b",".join(chunk) + b"]"
                    enqueue(dest, body, producer=producer)
        for plugin in load_plugins():
            if _wants_alerts(plugin.filter):
                items = [msgspec.json.decode(e) for e in encoded]
                for args in ([(items,)] if plugin.batch else [(item,) for item in items]):
                    app.send_task(plugin.name, args=args, queue=plugin.queue, producer=producer)


def fan_out(events: list[Event], span_for: Callable[[list[Event]], ContextManager] | None = None) -> None:
    """Enqueue each event for every target that wants it.

    `span_for(events)` (tracing on, workers/traced.py) makes each enqueue happen inside a span of the
    trace of the callbacks it carries, so the delivery task continues their traces.
    """
    if not events:
        return
    encoded = {e.event_id: EVENT_ENCODER.encode(e) for e in events}
    within = span_for or _untraced
    app = celery_app()
    # One broker connection for the whole batch instead of one checkout per message.
    with app.producer_or_acquire() as producer:
        for dest in load_destinations():
            wanted = [e for e in events if dest.filter.matches(e)]
            for chunk in _chunks(wanted, dest.batch_size):
                bodies = [encoded[e.event_id] for e in chunk]
                body = bodies[0] if dest.batch_size == 1 else b"[" + b",".join(bodies) + b"]"
                with within(chunk):
                    enqueue(dest, body, producer=producer)
        for plugin in load_plugins():
            wanted = [e for e in events if plugin.filter.matches(e)]
            if not wanted:
                continue
            if plugin.batch:
                with within(wanted):
                    app.send_task(plugin.name, args=([msgspec.json.decode(encoded[e.event_id]) for e in wanted],),
                                  queue=plugin.queue, producer=producer)
            else:
                for event in wanted:
                    with within([event]):
                        app.send_task(plugin.name, args=(msgspec.json.decode(encoded[event.event_id]),),
                                      queue=plugin.queue, producer=producer)


def _untraced(_: list[Event]) -> ContextManager:
    return nullcontext()
