"""The Celery application, built from config/ on first use, never at import.

Importing any module of tspipe reads no settings and builds no app: the web
process, the delivery engine and the CLI import workers/ modules (or modules
that do) without paying for Celery or failing on a worker-only setting. The
tasks are `shared_task`s, bound to whichever app is built; `get_app()` builds
the process's one app (cached) and makes it current. `tspipe worker`, `beat`
and `flower` call it; `celery -A workers.app worker` (or `workers.app:app`)
finds it through this module's `__getattr__`. The broker URL is REDIS_URL;
`tspipe run` sets it to the embedded Redis.
"""

from __future__ import annotations

import logging

from celery import Celery, current_task
from celery.app import trace
from celery.signals import setup_logging, worker_process_init, worker_process_shutdown
from kombu import Queue
from kombu.serialization import register

from config import Settings, get_settings, tracing
from config.destinations import parse_destinations
from config.settings import UNREACHABLE_REDIS_URL
from config.logging import configure_logging
from pipeline.record import INGEST_BATCH_TASK
from store.serialization import CONTENT_ENCODING, CONTENT_TYPE, SERIALIZER, dumps, loads
from workers import queue_order
from workers.queue_order import MAINTENANCE_QUEUE

register(SERIALIZER, dumps, loads, content_type=CONTENT_TYPE, content_encoding=CONTENT_ENCODING)


def make_celery(settings: Settings | None = None) -> Celery:
    settings = settings or get_settings()
    broker = settings.redis_url or UNREACHABLE_REDIS_URL
    app = Celery("tspipe", broker=broker, set_as_current=False)
    app.conf.update(
        task_serializer=SERIALIZER,
        result_serializer=SERIALIZER,
        accept_content=[SERIALIZER, "json"],
        task_ignore_result=True,
        result_backend=None,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        # Each message is a whole batch: prefetching one keeps a crashed worker's
        # redelivery small while still hiding the broker round trip.
        worker_prefetch_multiplier=1,
        task_default_queue=settings.queue,
        task_routes={INGEST_BATCH_TASK: {"queue": settings.queue}},
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            # A batch of hundreds of callbacks is applied in well under a second;
            # five minutes leaves room for a slow destination without redelivering
            # healthy work too early after a crash. Auto-reply retries wait at most
            # ~16 s (exponential backoff, 5 retries), far below it, so their ETA
            # messages are never redelivered while still waiting.
            "visibility_timeout": 300,
            # Beat's maintenance queue before any other (workers/queue_order.py).
            "queue_order_strategy": queue_order.STRATEGY,
        },
        worker_hijack_root_logger=False,
        timezone="UTC",
        enable_utc=True,
        imports=("workers.tasks",),
        # Delivery, plug-in and reconciliation tasks; importing them registers them with this app.
        include=["workers.delivery", "workers.plugins", "workers.reconcile", "workers.archive_maintenance"],
        # One queue per destination (parsed here so a bad TSPIPE_DESTINATIONS stops start-up):
        # a worker consumes them all, and a destination's backlog never sits in front of another's.
        # The maintenance queue first: `tspipe worker` consumes every declared queue in this order.
        task_queues=[Queue(MAINTENANCE_QUEUE), Queue(settings.queue)]
        + [Queue(d.queue) for d in parse_destinations(settings.destinations)],
        beat_schedule={
            "tspipe-reconcile": maintenance_entry("tspipe.reconcile", float(settings.reconcile_interval_seconds)),
            "tspipe-journal-sweep": maintenance_entry("tspipe.journal_sweep", settings.journal_grace_seconds / 3),
        },
    )
    if settings.database_url:
        app.conf.beat_schedule["tspipe-archive-maintain"] = {
            "task": "tspipe.archive_maintain",
            "schedule": 3600.0,
            "options": {"queue": settings.queue, "expires": 3600.0},
        }
        app.conf.beat_schedule["tspipe-alerts"] = {
            "task": "tspipe.alerts",
            "schedule": float(settings.alert_interval_seconds),
            "options": {"queue": settings.queue, "expires": float(settings.alert_interval_seconds)},
        }
    app.conf.include.append("workers.alerts")
    return app


def maintenance_entry(task: str, every: float) -> dict[str, object]:
    """A beat schedule entry for a periodic job: on the maintenance queue, expiring after one period
    (the next run replaces it). Every periodic job goes through here (workers/queue_order.py says why)."""
    return {"task": task, "schedule": every, "options": {"queue": MAINTENANCE_QUEUE, "expires": every}}


class _NoPerTaskLines(logging.Filter):
    """Drops Celery's "Task ... received" and "Task ... succeeded in ..." lines.

    Two per queue message: 108 of the 296 lines of a first `tspipe run`. The
    batch task logs its own one-line summary; failures and retries still show.
    TSPIPE_LOG_LEVEL=debug brings them back.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg not in (trace.LOG_RECEIVED, trace.LOG_SUCCESS)


@worker_process_init.connect
def _tspipe_tracing(**_: object) -> None:
    """Traces when OTEL_EXPORTER_OTLP_ENDPOINT is set: per worker process, after the fork (config/tracing.py)."""
    if tracing.setup("tspipe-worker"):
        tracing.setup_celery_worker()


@worker_process_shutdown.connect
def _tspipe_tracing_flush(**_: object) -> None:
    tracing.flush()


@setup_logging.connect
def _tspipe_logging(**_: object) -> None:
    """Celery leaves logging alone when this signal has a receiver: ours masks phone numbers and keys."""
    settings = get_settings()
    configure_logging(settings)
    for name in ("celery.worker.strategy", "celery.app.trace"):
        logger = logging.getLogger(name)
        logger.filters[:] = [f for f in logger.filters if not isinstance(f, _NoPerTaskLines)]
        if settings.log_level != "debug":
            logger.addFilter(_NoPerTaskLines())


_app: Celery | None = None


def get_app() -> Celery:
    """The process's Celery app: built from the settings on first call, then the same one (and the current app,
    so `shared_task` proxies and plug-ins resolve to it)."""
    global _app
    if _app is None:
        _app = make_celery()
        _app.set_current()
    return _app


def reset_app() -> None:
    """Forget the built app, so the next `get_app()` reads the settings again (tests change REDIS_URL per test)."""
    global _app
    _app = None


def running_app() -> Celery:
    """The app of the running task (a threads or solo worker does not make its app current), else `get_app()`."""
    task = current_task._get_current_object() if current_task else None
    return task.app if task is not None else get_app()


def __getattr__(name: str) -> Celery:
    """`celery -A workers.app` looks up `app` (then `celery`) as an attribute: the app is built then, not on import."""
    if name == "app":
        return get_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
