"""The ingress web app: check, batch, write, answer 200.

It never decodes a callback body: it checks the signature and the size, wraps
the raw bytes in a Record and waits for its batch to be durably stored (Redis,
or the local spool during an outage). Other parts add their routes with
`setup_*(app)` functions; the shared objects are reachable through the AppKeys
below.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import time
from collections.abc import AsyncIterator

import redis.asyncio as aioredis
import msgspec
import structlog
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from config import Settings, tracing
from ingest.archive_api import setup_archive_api
from ingest.batcher import Batcher, Overloaded
from ingest.cluster_metrics import cluster_metrics
from ingest.dashboard import setup_dashboard
from ingest.metrics import IngestMetrics, SpoolDamage
from ingest.openapi import setup_openapi
from ingest.publisher import Publisher
from ingest.optout_check import setup_optout_check
from ingest.query_api import setup_query_api
from ingest.stats_api import setup_stats_api
from ingest.read_access import NO_TOKEN_HINT, NO_TOKEN_WARNING
from ingest.request_counts import METRICS_KEY, Handler, add_get, answer_unrouted
from ingest.spool import SpoolFull
from pipeline.record import Record
from pipeline.signature import SignatureError, SignatureVerifier
from store import connection

log = structlog.get_logger("tspipe.ingest")

SETTINGS_KEY = web.AppKey("settings", Settings)
PUBLISHER_KEY = web.AppKey("publisher", Publisher)
BATCHER_KEY = web.AppKey("batcher", Batcher)
VERIFIER_KEY = web.AppKey("verifier", SignatureVerifier)
REDIS_KEY = web.AppKey("redis", aioredis.Redis)

_OK = b"ok"
READY_TIMEOUT_S = 0.5
CALLBACKS = "/callbacks"
CALLBACKS_CHANNEL = "/callbacks/{channel}"


_REQUEST_ID_PREFIX = os.urandom(6).hex()
_request_counter = itertools.count(1)


def _next_request_id() -> str:
    """Unique per process start without a syscall per request (os.urandom costs more than the rest)."""
    return f"{_REQUEST_ID_PREFIX}-{next(_request_counter):x}"


def _json_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def _read_body(request: web.Request, limit: int) -> bytes:
    """The raw body, refusing more than `limit` bytes by Content-Length and while reading (chunked bodies)."""
    if request.content_length is not None and request.content_length > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=request.content_length)
    body = await request.content.read(limit + 1)
    if len(body) > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=len(body))
    # read(n) may return early on a chunk boundary: read the rest, still bounded.
    while not request.content.at_eof():
        more = await request.content.read(limit + 1 - len(body))
        if not more:
            break
        body += more
        if len(body) > limit:
            raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=len(body))
    return body


def _traced_submit(submit):
    """Tracing on: each Record carries its POST's trace context to the worker (see config/tracing.py)."""
    from opentelemetry.propagate import inject

    def traced(record: Record):
        carrier: dict[str, str] = {}
        inject(carrier)
        return submit(msgspec.structs.replace(record, traceparent=carrier.get("traceparent")))

    return traced


def _closing_error(status: int, message: str) -> web.Response:
    """An error after which the connection is closed: its body is still arriving and is not wanted."""
    response = _json_error(status, message)
    response.force_close()
    return response


def callback_handler(app: web.Application) -> Handler:
    """POST /callbacks[/{channel}], with what it needs bound once instead of looked up per request.

    This is the hot path (thousands of requests a second on one core), so it
    counts its own requests (see ingest/request_counts.py).

    A body still arriving after its headers is read under a deadline (408), and
    at most `max_slow_bodies` of them at once (503 beyond): the signature can only
    be checked once the body is complete, so without both a client with no key
    could hold every connection by trickling bodies. Neither costs the usual
    request anything: its body came with the headers and takes the first branch.
    """
    settings = app[SETTINGS_KEY]
    channels = frozenset(settings.channels)
    known = ", ".join(settings.channels)
    limit = settings.max_body_bytes
    verifier = app[VERIFIER_KEY]
    verify = verifier.verify if verifier.enabled else None
    submit = app[BATCHER_KEY].submit
    if tracing.active():
        submit = _traced_submit(submit)
    metrics = app[METRICS_KEY]
    count = metrics.count_request
    body_timeout = settings.body_timeout_seconds
    max_slow = settings.max_slow_bodies
    slow = 0  # bodies being read right now (the slow path)

    def refuse(route: str, status: int, message: str) -> web.Response:
        count(route, status)
        return _json_error(status, message)

    async def read_slow_body(request: web.Request, route: str) -> bytes | web.Response:
        """The body, or the response to answer instead: 503 over the cap, 408 past the deadline, 413 too large."""
        nonlocal slow
        if slow >= max_slow:
            count(route, 503)
            return _closing_error(503, "too many request bodies arriving at once; retry later")
        slow += 1
        try:
            async with asyncio.timeout(body_timeout):
                return await _read_body(request, limit)
        except web.HTTPRequestEntityTooLarge:
            return refuse(route, 413, f"body larger than {limit} bytes")
        except TimeoutError:
            count(route, 408)
            return _closing_error(408, f"request body not received within {body_timeout:g} s")
        finally:
            slow -= 1

    async def handle_callback(request: web.Request) -> web.Response:
        channel = request.match_info.get("channel")
        if channel is None:
            route = CALLBACKS
        else:
            route = CALLBACKS_CHANNEL
            if channel not in channels:
                return refuse(route, 404, f"unknown channel {channel!r}; known: {known}")
        stream = request.content
        if stream.is_eof():
            # Usually the whole small body came with the headers: take it without a coroutine.
            body = stream.read_nowait()
        else:
            body = await read_slow_body(request, route)
            if body.__class__ is not bytes:
                return body  # type: ignore[return-value]  # the 408, 413 or 503 to answer
        if len(body) > limit:
            return refuse(route, 413, f"body larger than {limit} bytes")
        headers = request.headers
        if verify is not None:
            try:
                verify(verifier.header_value(headers), body)
            except SignatureError as exc:
                metrics.signature_failures.labels(exc.reason).inc()
                log.warning("callback signature refused", reason=exc.reason, remote=request.remote)
                return refuse(route, 401, str(exc))
        if not body:
            return refuse(route, 400, "empty body")
        request_id = headers.get("X-Request-Id", "")[:64] or _next_request_id()
        try:
            await submit(Record(body, time.time(), channel, request_id))
        except Overloaded:
            return refuse(route, 503, "ingress overloaded; retry later")
        except SpoolFull:
            return refuse(route, 503, "queue store unreachable and local spool full; retry later")
        except Exception as exc:
            log.error("callback could not be stored", error=type(exc).__name__, request_id=request_id)
            return refuse(route, 503, "callback could not be stored; retry later")
        count(route, 200)
        return web.Response(body=_OK, content_type="text/plain")

    return handle_callback


async def handle_healthz(request: web.Request) -> web.Response:
    return web.Response(body=_OK, content_type="text/plain")


async def handle_readyz(request: web.Request) -> web.Response:
    app = request.app
    publisher = app[PUBLISHER_KEY]
    try:
        await asyncio.wait_for(app[REDIS_KEY].ping(), READY_TIMEOUT_S)
        reachable = True
    except Exception:
        reachable = False
    app[METRICS_KEY].redis_up.set(1 if reachable else 0)
    spooled = publisher.spool.size
    body = {"redis": "ok" if reachable else "unreachable", "spool_bytes": spooled, "outage": publisher.outage}
    ready = reachable and not publisher.outage
    return web.json_response({"ready": ready, **body}, status=200 if ready else 503)


async def handle_metrics(request: web.Request) -> web.Response:
    metrics = request.app[METRICS_KEY]
    metrics.spool_bytes.set(request.app[PUBLISHER_KEY].spool.size)
    cluster = await cluster_metrics(request.app[REDIS_KEY], request.app[SETTINGS_KEY].queue)
    return web.Response(body=generate_latest(metrics.registry) + cluster, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    """Start the batcher and the spool replay; on shutdown write what is pending, then stop."""
    settings = app[SETTINGS_KEY]
    if not app[VERIFIER_KEY].enabled:
        log.warning(
            "TELESIGN_API_KEY is not set: callbacks are NOT authenticated and anyone can post events",
            hint="set TELESIGN_API_KEY (and TELESIGN_CUSTOMER_ID) before exposing this endpoint",
        )
    if not settings.api_token:
        log.warning(NO_TOKEN_WARNING, hint=NO_TOKEN_HINT)
    publisher = app[PUBLISHER_KEY]
    if not publisher.spool.empty:
        log.warning("spool holds batches from an earlier run; replaying", spool_bytes=publisher.spool.size)
    batcher = app[BATCHER_KEY]
    batcher.start()
    replay = asyncio.get_running_loop().create_task(publisher.replay_loop(), name="tspipe-spool-replay")
    log.info("ingress ready", queue=settings.queue, auth=app[VERIFIER_KEY].enabled)
    yield
    await batcher.close()
    replay.cancel()
    try:
        await replay
    except asyncio.CancelledError:
        pass
    # One last attempt so a clean shutdown leaves nothing spooled that Redis could take.
    if publisher.outage:
        try:
            await asyncio.wait_for(publisher.replay_now(), 5)
        except Exception:
            log.warning("spool left for the next start", spool_bytes=publisher.spool.size)
    await publisher.close()
    await app[REDIS_KEY].aclose()
    tracing.flush()


async def _write_pending(app: web.Application) -> None:
    """On SIGTERM, write the waiting batch at once.

    aiohttp waits for running handlers before it runs the cleanup context, and
    those handlers wait for their batch: without this, shutdown would linger a
    whole batch window (TSPIPE_BATCH_MAX_WAIT_MS) before answering them.
    """
    await app[BATCHER_KEY].close()


async def _remove_filter(log_filter: logging.Filter) -> None:
    logging.getLogger("aiohttp.server").removeFilter(log_filter)


class MalformedRequests(logging.Filter):
    """Counts requests that are not HTTP (aiohttp answers them 400) instead of logging each at error level.

    aiohttp logs every one with its traceback and the offending bytes, so
    anyone able to open a connection could fill the logs, and make every
    line pass through the masking processor. The count in /metrics says
    it happens; the bytes are a scanner's, not Telesign's."""

    def __init__(self, metrics: IngestMetrics) -> None:
        super().__init__()
        self.metrics = metrics

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError):
            self.metrics.malformed_requests.labels(type(error).__name__).inc()
            return False
        return True


def create_app(settings: Settings) -> web.Application:
    """The ingress app. Needs settings.redis_url; the spool lives in settings.effective_spool_dir."""
    if not settings.redis_url:
        raise ValueError("REDIS_URL is not set: the ingress needs a Redis to write to (or use `tspipe run`)")
    # Traces only when OTEL_EXPORTER_OTLP_ENDPOINT is set; the instrumentation must precede the app.
    if tracing.setup("tspipe-web"):
        tracing.instrument_aiohttp_server()
    # client_max_size is a second guard; _read_body answers 413 itself with a JSON error.
    # No middleware: see ingest/request_counts.py for how requests are counted.
    app = web.Application(client_max_size=settings.max_body_bytes + 1)
    metrics = IngestMetrics()
    malformed = MalformedRequests(metrics)
    logging.getLogger("aiohttp.server").addFilter(malformed)
    app.on_cleanup.append(lambda _app: _remove_filter(malformed))
    publisher = Publisher(settings)
    metrics.registry.register(SpoolDamage(publisher.spool))
    app[SETTINGS_KEY] = settings
    app[METRICS_KEY] = metrics
    app[PUBLISHER_KEY] = publisher
    app[BATCHER_KEY] = Batcher(settings, publisher, metrics)
    app[VERIFIER_KEY] = SignatureVerifier(settings.telesign_api_keys, settings.telesign_customer_id)
    app[REDIS_KEY] = connection.connect_async(
        settings.redis_url, connect_timeout=READY_TIMEOUT_S, timeout=READY_TIMEOUT_S, retries=0
    )
    handle_callback = callback_handler(app)
    app.router.add_post(CALLBACKS, handle_callback)
    app.router.add_post(CALLBACKS_CHANNEL, handle_callback)
    add_get(app, "/healthz", handle_healthz)
    add_get(app, "/readyz", handle_readyz)
    add_get(app, "/metrics", handle_metrics)
    app.cleanup_ctx.append(_lifecycle)
    app.on_shutdown.append(_write_pending)
    setup_query_api(app, settings)
    setup_archive_api(app, settings)
    setup_optout_check(app, settings)
    setup_stats_api(app, settings)
    setup_dashboard(app, settings)
    setup_openapi(app)
    answer_unrouted(app)
    return app
