"""GET /v1/stats: the delivery figures (CONTRACT.md section 7), as JSON or CSV, from the archive's rollups.

Runs on the archive's connection pool (ingest/archive_api.py, mounted
first), so a web process has one pool, opened without waiting: while
PostgreSQL is down or DATABASE_URL is unset this route answers 503 with the
reason and the callbacks are unaffected. Bearer-token protected like the
rest of the query API.
"""

from __future__ import annotations

import asyncio

import msgspec
import psycopg
from aiohttp import web

from archive import stats
from config import Settings
from ingest.archive_api import ARCHIVE_OFF, POOL_KEY, QUERY_TIMEOUT_S
from ingest.read_access import token_denied
from ingest.request_counts import add_get


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def setup_stats_api(app: web.Application, settings: Settings) -> None:
    """Add GET /v1/stats to `app` (after setup_archive_api, whose pool it uses)."""
    token = settings.api_token

    async def handle_stats(request: web.Request) -> web.Response:
        if denied := token_denied(request, token):
            return denied
        query = request.query
        fmt = query.get("format", "json")
        channel = query.get("channel") or None
        try:
            group_by = stats.check(query.get("group_by"), channel)
            since, until = stats.time_range(query.get("since"), query.get("until"))
            if fmt not in ("json", "csv"):
                raise stats.StatsError(f"format: {fmt!r} is not json or csv")
            if query.get("histogram", "0") not in ("0", "1"):
                raise stats.StatsError(f"histogram: {query['histogram']!r} is not 0 or 1")
        except stats.StatsError as exc:
            return _error(400, str(exc))
        pool = request.app.get(POOL_KEY)
        if pool is None:
            return _error(503, ARCHIVE_OFF)
        try:
            async with pool.connection() as conn:
                result = await asyncio.wait_for(
                    stats.aquery(conn, group_by, since, until, channel, histogram=query.get("histogram") == "1"),
                    QUERY_TIMEOUT_S)
        except (psycopg.Error, OSError, asyncio.TimeoutError):
            return _error(503, "the archive is unavailable; retry later")
        if fmt == "csv":
            return web.Response(text=stats.to_csv(result), content_type="text/csv",
                                headers={"Content-Disposition": f'attachment; filename="tspipe-stats-{group_by}.csv"'})
        return web.Response(body=msgspec.json.encode(result), content_type="application/json")

    add_get(app, "/v1/stats", handle_stats)
