"""The live dashboard: one static page and one JSON endpoint, served by the web process.

Plain HTML and a small script (no build step): the page polls
/dashboard/data.json every two seconds and computes callbacks per second
from the difference between two polls, so the server keeps no state.
Everything shown is read from the same Redis the workers write.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone
from pathlib import Path

import msgspec
import redis.asyncio as aioredis
from aiohttp import web

from config import Settings
from config.logging import mask_text
from ingest.read_access import STORE_KEY, token_denied, use_store_client
from ingest.request_counts import add_get
from store import keys

STATIC = Path(__file__).parent / "static"
_SERIES = re.compile(r'^tspipe_events_total\{(.*)\}$')
_LABEL = re.compile(r'(\w+)="([^"]*)"')
LATEST = 10
UPLOT = "1.6.32"  # ingest/static/vendor: uPlot's dist files from its npm package, with its MIT licence


def _entry(raw: bytes) -> dict:
    """A quarantine or dead-letter entry, trimmed for display and with addresses masked."""
    try:
        data = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return {"error": "unreadable entry"}
    if not isinstance(data, dict):
        return {"error": "unreadable entry"}
    keep = ("id", "kind", "target", "reason", "error", "attempts", "received_at", "quarantined_at", "failed_at", "request_id")
    return {k: _shown(k, v) for k, v in data.items() if k in keep}


def _shown(key: str, value: object) -> object:
    """Times as ISO 8601 UTC (they are stored as epoch seconds), text with addresses masked."""
    if key.endswith("_at") and isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    return mask_text(value) if isinstance(value, str) else value


def _event(raw: bytes) -> dict:
    try:
        data = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return {}
    if not isinstance(data, dict):
        return {}
    status = data.get("status") or {}
    return {
        "event_id": data.get("event_id"), "reference_id": data.get("reference_id"), "kind": data.get("kind"),
        "channel": data.get("channel"), "code": status.get("code"), "outcome": status.get("outcome"),
        "action": data.get("action"), "occurred_at": data.get("occurred_at"), "received_at": data.get("received_at"),
    }


def _alert(raw: bytes) -> dict:
    try:
        data = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return {}
    keep = ("event_id", "dimension", "key", "label", "delivery_rate", "baseline_rate", "final", "description",
            "occurred_at")
    return {k: v for k, v in data.items() if k in keep} if isinstance(data, dict) else {}


async def snapshot(client: aioredis.Redis, queue: str, now: float | None = None) -> dict:
    """Everything the page shows, read in one pipeline."""
    now = time.time() if now is None else now
    midnight = datetime.fromtimestamp(now, timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
    pipe = client.pipeline(transaction=False)
    pipe.hgetall(keys.METRICS)
    pipe.llen(queue)
    pipe.zcount(keys.OPTOUT_INDEX, midnight, "+inf")  # scored by when applied, so samples count today
    pipe.llen(keys.DEADLETTER)
    pipe.lrange(keys.DEADLETTER, 0, 4)
    pipe.llen(keys.QUARANTINE)
    pipe.lrange(keys.QUARANTINE, 0, 4)
    pipe.lrange(keys.RECENT_EVENTS, 0, LATEST - 1)
    pipe.lrange(keys.ALERTS, 0, LATEST - 1)
    metrics, depth, optouts_today, dlq_size, dlq_latest, q_size, q_latest, recent, alerts = await pipe.execute()

    total = 0
    by_channel: dict[str, dict[str, int]] = {}
    for field, value in metrics.items():
        match = _SERIES.match(field.decode())
        if not match:
            continue
        labels = dict(_LABEL.findall(match.group(1)))
        count = int(value)
        total += count
        channel = labels.get("channel") or "unknown"
        outcome = labels.get("outcome") or "unknown"
        by_channel.setdefault(channel, {})
        by_channel[channel][outcome] = by_channel[channel].get(outcome, 0) + count
    lag_count = int(metrics.get(b"tspipe_processing_lag_seconds_count", 0))
    lag_sum = float(metrics.get(b"tspipe_processing_lag_seconds_sum", 0))
    return {
        "now": now,
        "callbacks_total": total,
        "outcomes_by_channel": by_channel,
        "queue_depth": depth,
        "lag_avg_seconds": round(lag_sum / lag_count, 4) if lag_count else None,
        "optouts_today": optouts_today,
        "deadletters": {"count": dlq_size, "latest": [_entry(x) for x in dlq_latest]},
        "quarantine": {"count": q_size, "latest": [_entry(x) for x in q_latest]},
        "latest_events": [_event(x) for x in recent],
        "alerts": [_alert(x) for x in alerts],
    }


def setup_dashboard(app: web.Application, settings: Settings) -> None:
    """GET / and /dashboard (the page), /dashboard/app.js, /dashboard/data.json, /dashboard/insight (charts);
    token-protected when set."""
    token = settings.api_token

    use_store_client(app, settings)

    def guarded(handler):
        async def wrapper(request: web.Request) -> web.StreamResponse:
            if denied := token_denied(request, token, allow_query=True):
                return denied
            return await handler(request)
        return wrapper

    async def page(_: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "dashboard.html", headers={"Cache-Control": "no-store"})

    async def script(_: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "dashboard.js")

    async def insight_page(_: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "insight.html", headers={"Cache-Control": "no-store"})

    def asset(path: Path):
        async def serve(_: web.Request) -> web.StreamResponse:
            return web.FileResponse(path, headers={"Cache-Control": "public, max-age=86400"})
        return serve

    async def data(request: web.Request) -> web.Response:
        try:
            body = await snapshot(request.app[STORE_KEY], settings.queue)
        except (aioredis.RedisError, OSError) as exc:
            return web.json_response({"error": f"store unreachable: {type(exc).__name__}"}, status=503)
        return web.json_response(body, headers={"Cache-Control": "no-store"})

    add_get(app, "/", guarded(page))
    add_get(app, "/dashboard", guarded(page))
    add_get(app, "/dashboard/app.js", script)
    add_get(app, "/dashboard/data.json", guarded(data))
    # Delivery insight: charts of GET /v1/stats, drawn by the vendored uPlot (no CDN).
    add_get(app, "/dashboard/insight", guarded(insight_page))
    add_get(app, "/dashboard/insight.js", asset(STATIC / "insight.js"))
    add_get(app, "/dashboard/vendor/uplot.min.js", asset(STATIC / "vendor" / f"uplot-{UPLOT}.min.js"))
    add_get(app, "/dashboard/vendor/uplot.min.css", asset(STATIC / "vendor" / f"uplot-{UPLOT}.min.css"))
