"""Reconciliation: ask Telesign about messages that have gone quiet without a final status.

A callback can be lost (Telesign retries only 3 times in about 40 s). Beat
runs this task every TSPIPE_RECONCILE_INTERVAL_SECONDS: reference ids in
keys.PENDING_INDEX whose last event is older than reconcile_after_seconds
(and younger than 12 h, the status API's window) are polled, at most
reconcile_max_per_run per run and reconcile_rate_per_second. The answer
goes through the same decode and state-apply path as a callback, with
source=POLL, so the state rules (idempotent, monotonic) hold for it too.
A final message is not in the index, so it is never polled.

One message cannot spoil a run: its reference id is quoted into the URL (it
came from a callback body, so it may hold a space or `../`), and an error on
one id is logged, counted (tspipe_reconcile_errors_total) and skipped. The
run's lock lives as long as the run may (the run stops starting polls before
the lock's TTL runs out) and is released only by the run that holds it.
"""

from __future__ import annotations

import base64
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from datetime import datetime, timezone

import redis
import structlog
from celery import shared_task

from config import Settings, get_settings
from store import connection, keys, locks
from store.state import PENDING_WINDOW_SECONDS

log = structlog.get_logger("tspipe.reconcile")

STATUS_WINDOW_SECONDS = PENDING_WINDOW_SECONDS
RECONCILE_TASK = "tspipe.reconcile"
HTTP_TIMEOUT_S = 10.0
# The longest one poll may take: messaging, then verify, each bounded by the timeout.
POLL_MAX_S = 2 * HTTP_TIMEOUT_S
ERRORS_METRIC = "tspipe_reconcile_errors_total"


class PollError(Exception):
    """Telesign answered a status poll with an error, or could not be reached."""


def lock_ttl(settings: Settings) -> int:
    """Seconds the run's lock lives: the run's own pace for a full run, plus one poll, plus slack."""
    pace = settings.reconcile_max_per_run / settings.reconcile_rate_per_second
    return int(max(pace, settings.reconcile_interval_seconds) + POLL_MAX_S + 30)

Apply = Callable[[bytes], None]


def due(client: redis.Redis, settings: Settings, now: float | None = None) -> list[str]:
    now = time.time() if now is None else now
    ids = client.zrangebyscore(keys.PENDING_INDEX, now - STATUS_WINDOW_SECONDS, now - settings.reconcile_after_seconds,
                               start=0, num=settings.reconcile_max_per_run)
    return [i.decode() if isinstance(i, bytes) else i for i in ids]


def fetch_status(settings: Settings, reference_id: str) -> bytes | None:
    """GET the messaging status, falling back to Verify when Messaging does not know the id.

    None when neither knows it (404 twice); PollError on any other failure. The id is one
    quoted path segment, so `../` or a space cannot reach another endpoint or break the URL.
    """
    token = base64.b64encode(f"{settings.telesign_customer_id}:{(settings.telesign_api_keys or ('',))[0]}".encode()).decode()
    segment = urllib.parse.quote(reference_id, safe="")
    for path in ("/v1/messaging/", "/v1/verify/"):
        request = urllib.request.Request(settings.telesign_api_url + path + segment,
                                         headers={"authorization": f"Basic {token}", "accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:
                return response.read()
        except urllib.error.HTTPError as exc:
            if exc.code != 404:
                raise PollError(f"{path} answered {exc.code}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise PollError(f"{path} unreachable: {exc}") from None
    return None


def default_apply(body: bytes) -> None:
    """Decode with source=POLL and apply through the store, exactly as the batch task does a callback."""
    # Imported here: workers.tasks imports this module's app, so a top-level import would be circular.
    from pipeline import decode
    from pipeline.event import Source
    from pipeline.record import Record, encode_batch
    from workers.tasks import apply_and_fan_out, get_store, queue_for_archive

    received = time.time()
    event = decode(body, source=Source.POLL, received_at=datetime.fromtimestamp(received, tz=timezone.utc))
    store = get_store()
    queue_for_archive(store, encode_batch([Record(body, received, None, "reconcile")]), 1, Source.POLL.value)
    apply_and_fan_out(store, [event])


def reconcile_once(client: redis.Redis, settings: Settings, apply: Apply = default_apply) -> int:
    """Poll every due message once; returns how many answers were applied."""
    ttl = lock_ttl(settings)
    token = locks.acquire(client, keys.RECONCILE_LOCK, ttl)
    if token is None:
        return 0
    # No poll starts after this, so the run ends before its lock expires.
    deadline = time.monotonic() + ttl - POLL_MAX_S - 5
    applied = errors = 0
    try:
        gap = 1.0 / settings.reconcile_rate_per_second
        for reference_id in due(client, settings):
            started = time.monotonic()
            if started > deadline:
                log.warning("reconciliation run stopped at its time budget; the rest wait for the next run",
                            seconds=ttl)
                break
            try:
                body = fetch_status(settings, reference_id)
                if body is not None:
                    apply(body)
                    applied += 1
            except Exception as exc:  # noqa: BLE001 - one bad id or answer must not stop the run
                errors += 1
                log.error("status poll failed; going on with the next message", reference_id=reference_id,
                          error=type(exc).__name__, why=str(exc)[:200])
            time.sleep(max(0.0, gap - (time.monotonic() - started)))
    finally:
        if errors:
            client.hincrby(keys.METRICS, ERRORS_METRIC, errors)
        locks.release(client, keys.RECONCILE_LOCK, token)
    return applied


@shared_task(name=RECONCILE_TASK, ignore_result=True)
def reconcile() -> int:
    settings = get_settings()
    return reconcile_once(connection.shared(settings.redis_url), settings)
