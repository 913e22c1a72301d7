"""OpenTelemetry traces, off unless OTEL_EXPORTER_OTLP_ENDPOINT is set.

Off, nothing is imported and nothing is patched: the ingress and the
workers bind their untraced code paths once at start-up, so the hot paths
pay nothing (not even a check per request). On, the standard
instrumentations do the plumbing: aiohttp's server (each callback's POST),
Celery (task publish and run, context carried in message headers;
initialised in `worker_process_init`, after the fork), redis, urllib
(Telesign API calls) and aiohttp's client (the delivery engine's webhook
POSTs). tspipe adds what no instrumentation knows: each callback's trace
context rides in its Record through the batch (ingest/app.py), the worker
gives every callback its own decode, apply and fan-out spans in that trace
(workers/traced.py), and each delivery job carries its fan-out span's
context to the delivery engine (deliver/engine.py), so one trace runs from
the callback's arrival to each downstream delivery; the batch span links
every callback it carried.

The SDK reads the standard OTEL_* variables (endpoint, headers, service
name, sampler); tspipe only names the service when OTEL_SERVICE_NAME is unset.
"""

from __future__ import annotations

import os

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")

_active = False


def wanted() -> bool:
    """Whether traces are asked for (an OTLP endpoint is configured)."""
    return any(os.environ.get(name) for name in ENDPOINT_VARIABLES)


def active() -> bool:
    return _active


def setup(service: str, exporter=None) -> bool:
    """Install the tracer provider and the redis and urllib instrumentations once; True when tracing is on.

    `exporter` replaces the OTLP/HTTP exporter (tests pass the SDK's in-memory one).
    """
    global _active
    if _active:
        return True
    if exporter is None and not wanted():
        return False
    try:
        from opentelemetry import trace
        from opentelemetry.instrumentation.redis import RedisInstrumentor
        from opentelemetry.instrumentation.urllib import URLLibInstrumentor
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    except ImportError as exc:  # the `otel` extra is not installed
        raise RuntimeError(
            f"OTEL_EXPORTER_OTLP_ENDPOINT is set but OpenTelemetry is not installed ({exc.name}): "
            "pip install 'tspipe[otel]', or unset OTEL_EXPORTER_OTLP_ENDPOINT"
        ) from None
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME") or service})
    provider = TracerProvider(resource=resource)
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    else:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    RedisInstrumentor().instrument()
    URLLibInstrumentor().instrument()
    _active = True
    return True


def setup_celery_worker() -> None:
    """Celery's instrumentation, in each worker process (called from worker_process_init)."""
    from opentelemetry.instrumentation.celery import CeleryInstrumentor

    CeleryInstrumentor().instrument()


def instrument_aiohttp_server() -> None:
    """aiohttp's server instrumentation; must run before the web.Application is built."""
    from opentelemetry.instrumentation.aiohttp_server import AioHttpServerInstrumentor

    AioHttpServerInstrumentor().instrument()


def instrument_aiohttp_client() -> None:
    """aiohttp's client instrumentation (the delivery engine's POSTs); must run before sessions are made."""
    from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor

    AioHttpClientInstrumentor().instrument()


def flush(timeout_ms: int = 5000) -> None:
    if not _active:
        return
    from opentelemetry import trace

    provider = trace.get_tracer_provider()
    force_flush = getattr(provider, "force_flush", None)
    if force_flush is not None:
        force_flush(timeout_ms)
