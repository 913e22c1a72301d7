"""Reconciliation: ask Telesign about messages that have gone quiet without a final status.

A callback can be lost (Telesign retries only 3 times in about 40 s). Beat
runs this task every TSPIPE_RECONCILE_INTERVAL_SECONDS: reference ids in
keys.PENDING_INDEX whose last event is older than reconcile_after_seconds
(and younger than 12 h, the status API's window) are polled, at most
reconcile_max_per_run per run and reconcile_rate_per_second. The answer
goes through the same decode and state-apply path as a callback, with
source=POLL, so the state rules (idempotent, monotonic) hold for it too.
A final message is not in the index, so it is never polled.
"""

from __future__ import annotations

import base64
import time
from datetime import datetime, timezone
import urllib.error
import urllib.request
from collections.abc import Callable

import redis
from celery import shared_task

from config import Settings, get_settings
from store import connection, keys
from store.state import PENDING_WINDOW_SECONDS

STATUS_WINDOW_SECONDS = PENDING_WINDOW_SECONDS
RECONCILE_TASK = "tspipe.reconcile"

Apply = Callable[[bytes], None]


def due(client: redis.Redis, settings: Settings, now: float | None = None) -> list[str]:
    now = time.time() if now is None else now
    ids = client.zrangebyscore(keys.PENDING_INDEX, now - STATUS_WINDOW_SECONDS, now - settings.reconcile_after_seconds,
                               start=0, num=settings.reconcile_max_per_run)
    return [i.decode() if isinstance(i, bytes) else i for i in ids]


def fetch_status(settings: Settings, reference_id: str) -> bytes | None:
    """GET the messaging status, falling back to Verify when Messaging does not know the id."""
    token = base64.b64encode(f"{settings.telesign_customer_id}:{(settings.telesign_api_keys or ('',))[0]}".encode()).decode()
    for path in ("/v1/messaging/", "/v1/verify/"):
        request = urllib.request.Request(settings.telesign_api_url + path + reference_id,
                                         headers={"authorization": f"Basic {token}", "accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.read()
        except urllib.error.HTTPError as exc:
            if exc.code != 404:
                return None
        except (urllib.error.URLError, OSError):
            return None
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
    if not client.set(keys.RECONCILE_LOCK, "1", nx=True, ex=max(settings.reconcile_interval_seconds, 30)):
        return 0
    applied = 0
    try:
        gap = 1.0 / settings.reconcile_rate_per_second
        for reference_id in due(client, settings):
            started = time.monotonic()
            body = fetch_status(settings, reference_id)
            if body is not None:
                try:
                    apply(body)
                    applied += 1
                except Exception:  # noqa: BLE001 - one bad answer must not stop the run
                    pass
            time.sleep(max(0.0, gap - (time.monotonic() - started)))
    finally:
        client.delete(keys.RECONCILE_LOCK)
    return applied


@shared_task(name=RECONCILE_TASK, ignore_result=True)
def reconcile() -> int:
    settings = get_settings()
    return reconcile_once(connection.shared(settings.redis_url), settings)
