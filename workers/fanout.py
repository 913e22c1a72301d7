"""Fan-out: hand newly applied events to every destination and plug-in whose filter wants them.

Called by the batch task with the events it just applied (never duplicates,
thanks to dedup), so each matching event is enqueued once per target. Each
destination has its own Redis queue, read by the delivery engine (`tspipe
deliver`), and all of them are written in one round trip; each delivery is
at-least-once, and order is not promised (webhook-id lets receivers dedupe).
Plug-ins are Celery tasks, sent to the queue they declare.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager as ContextManager
from contextlib import nullcontext

import msgspec
import redis

from config.destinations import load_destinations
from pipeline.alerts import ALERT_ENCODER
from pipeline.event import EVENT_ENCODER, Event
from workers.app import running_app
from workers.delivery import enqueue, redis_client
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


def _wants_alerts(filter) -> bool:
    """Alerts go where kind "alert" is asked for, or where nothing is filtered at all."""
    return "alert" in filter.kinds or filter == type(filter)()


def fan_out_alerts(alerts: list, client: redis.Redis | None = None) -> None:
    """Delivery-rate alerts (pipeline/alerts.py), sent like events: same queues, signing and retries."""
    if not alerts:
        return
    encoded = [ALERT_ENCODER.encode(a) for a in alerts]
    bodies = []
    for dest in load_destinations():
        if _wants_alerts(dest.filter):
            bodies.append((dest, [c[0] if dest.batch_size == 1 else b"[" + b",".join(c) + b"]"
                                  for c in _chunks(encoded, dest.batch_size)]))
    if bodies:
        enqueue(client or redis_client(), bodies)
    plugins = [p for p in load_plugins() if _wants_alerts(p.filter)]
    if not plugins:
        return
    app = running_app()
    items = [msgspec.json.decode(e) for e in encoded]
    with app.producer_or_acquire() as producer:
        for plugin in plugins:
            for args in ([(items,)] if plugin.batch else [(item,) for item in items]):
                app.send_task(plugin.name, args=args, queue=plugin.queue, producer=producer)


def fan_out(events: list[Event], client: redis.Redis | None = None,
            span_for: Callable[[list[Event]], ContextManager] | None = None,
            current: set[str] | frozenset[str] = frozenset()) -> None:
    """Queue each event for every destination and plug-in that wants it.

    `span_for(events)` is given when tracing is on (workers/traced.py): each delivery job then
    carries the trace context of a span in its callback's trace, and the delivery engine's POST
    continues that trace; a plug-in task is sent inside that span (Celery's instrumentation).
    `current` holds the ids of events that became their message's state (see encode).
    """
    if not events:
        return
    encoded = {e.event_id: encode(e, e.event_id in current) for e in events}
    within = span_for or _untraced
    bodies = []
    traces: list[list[str | None]] | None = [] if span_for is not None else None
    for dest in load_destinations():
        chunks = _chunks([e for e in events if dest.filter.matches(e)], dest.batch_size)
        bodies.append((dest, [encoded[c[0].event_id] if dest.batch_size == 1
                              else b"[" + b",".join(encoded[e.event_id] for e in c) + b"]" for c in chunks]))
        if traces is not None:
            traces.append([_traceparent(within, c) for c in chunks])
    if bodies:
        enqueue(client or redis_client(), bodies, traceparents=traces)
    plugins = load_plugins()
    if not plugins:
        return
    app = running_app()
    # One broker connection for the whole batch instead of one checkout per message.
    with app.producer_or_acquire() as producer:
        for plugin in plugins:
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


def _traceparent(within: Callable[[list[Event]], ContextManager], events: list[Event]) -> str | None:
    """The W3C traceparent of the fan-out span of `events` (tracing on only)."""
    from opentelemetry.propagate import inject

    carrier: dict[str, str] = {}
    with within(events):
        inject(carrier)
    return carrier.get("traceparent")
