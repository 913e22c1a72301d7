"""The worker's spans for one batch, when tracing is on (config/tracing.py; never imported when off).

A batch carries many callbacks, each with the trace context of its POST
(Record.traceparent). The batch gets one `tspipe.batch` span (a child of
Celery's task span) linking every callback it carried; each callback gets,
in its own trace, a `tspipe.decode` span, a `tspipe.apply` span (the
batch's one Redis call, timed as such) and a `tspipe.fan_out` span around
each enqueue of it, under which Celery's instrumentation publishes the
delivery task with that context: the delivery and its HTTP POST continue the
callback's trace. A destination that takes several events per POST gets the
first one's trace, linked to the others.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from pipeline.event import Event
from pipeline.record import Record

_propagator = TraceContextTextMapPropagator()
_tracer = trace.get_tracer("tspipe.worker")


def _context_of(record: Record) -> Context | None:
    return _propagator.extract({"traceparent": record.traceparent}) if record.traceparent else None


class BatchSpans:
    def __init__(self, records: list[Record]) -> None:
        self.parents = [_context_of(r) for r in records]
        links = [Link(trace.get_current_span(c).get_span_context()) for c in self.parents if c is not None]
        self.batch = _tracer.start_span("tspipe.batch", links=links, attributes={"tspipe.records": len(records)})
        self.link = [Link(self.batch.get_span_context())]
        self.by_event: dict[str, Context | None] = {}
        self._token = otel_context.attach(trace.set_span_in_context(self.batch))

    def decode(self, records: list[Record], decode_records: Callable) -> tuple[list, list]:
        events, bad = [], []
        for record, parent in zip(records, self.parents):
            with _tracer.start_as_current_span("tspipe.decode", context=parent, links=self.link) as span:
                good, failed = decode_records([record])
                span.set_attribute("tspipe.quarantined", bool(failed))
            for event in good:
                self.by_event[event.event_id] = parent
                span.set_attribute("tspipe.event_id", event.event_id)
            events += good
            bad += failed
        return events, bad

    @contextmanager
    def apply(self, events: list[Event]) -> Iterator[None]:
        """Around the batch's apply: then one `tspipe.apply` span per callback, in its trace, timed like it."""
        with _tracer.start_as_current_span("tspipe.apply", attributes={"tspipe.events": len(events)}) as span:
            started = time.time_ns()
            yield
        link = [Link(span.get_span_context())]
        ended = time.time_ns()
        for event in events:
            parent = self.by_event.get(event.event_id)
            if parent is not None:
                _tracer.start_span("tspipe.apply", context=parent, start_time=started, links=link,
                                   attributes={"tspipe.event_id": event.event_id}).end(end_time=ended)

    @contextmanager
    def fan_out(self, events: list[Event]) -> Iterator[None]:
        parent = self.by_event.get(events[0].event_id) if events else None
        links = self.link + [
            Link(trace.get_current_span(c).get_span_context())
            for c in (self.by_event.get(e.event_id) for e in events[1:]) if c is not None
        ]
        with _tracer.start_as_current_span("tspipe.fan_out", context=parent, links=links,
                                           attributes={"tspipe.events": len(events)}):
            yield

    def end(self) -> None:
        otel_context.detach(self._token)
        self.batch.end()
