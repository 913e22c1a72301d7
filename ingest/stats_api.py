"""GET /v1/stats: the delivery figures (CONTRACT.md section 7), as JSON or CSV, from the archive's rollups.

The queries are plain psycopg (archive/stats.py) run in a worker thread
from a small connection pool opened on first use, so the event loop (and
the callback hot path it serves) never waits on PostgreSQL. Bearer-token
protected like the rest of the query API.
"""

from __future__ import annotations

import asyncio

import msgspec
from aiohttp import web

from archive import stats
from config import Settings
from ingest.read_access import token_denied
from ingest.request_counts import add_get

POOL_KEY = web.AppKey("tspipe_stats_pool", object)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


class StatsReader:
    """A lazily opened psycopg pool; queries run in threads."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._pool = None

    def _query(self, group_by: str, since, until, channel: str | None) -> stats.Stats:
        if self._pool is None:
            from psycopg_pool import ConnectionPool

            self._pool = ConnectionPool(self.url, min_size=1, max_size=4, kwargs={"autocommit": True}, open=True)
        with self._pool.connection() as conn:
            return stats.query(conn, group_by, since, until, channel)

    async def query(self, group_by: str, since, until, channel: str | None) -> stats.Stats:
        return await asyncio.to_thread(self._query, group_by, since, until, channel)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()


def setup_stats_api(app: web.Application, settings: Settings) -> None:
    """Add GET /v1/stats to `app`."""
    token = settings.api_token
    reader = StatsReader(settings.database_url) if settings.database_url else None
    app[POOL_KEY] = reader

    async def close(app: web.Application) -> None:
        if reader is not None:
            await asyncio.to_thread(reader.close)

    app.on_cleanup.append(close)

    async def handle_stats(request: web.Request) -> web.Response:
        if denied := token_denied(request, token):
            return denied
        query = request.query
        fmt = query.get("format", "json")
        try:
            group_by = stats.check(query.get("group_by"), query.get("channel"))
            since, until = stats.time_range(query.get("since"), query.get("until"))
            if fmt not in ("json", "csv"):
                raise stats.StatsError(f"format: {fmt!r} is not json or csv")
        except stats.StatsError as exc:
            return _error(400, str(exc))
        if reader is None:
            return _error(503, "the archive is off: set DATABASE_URL (tspipe run starts an embedded PostgreSQL)")
        try:
            result = await reader.query(group_by, since, until, query.get("channel"))
        except Exception as exc:  # PostgreSQL down or not migrated yet: say so, never a 500 with a traceback
            return _error(503, f"the archive cannot answer: {type(exc).__name__}: {exc}".split("\n")[0])
        if fmt == "csv":
            return web.Response(text=stats.to_csv(result), content_type="text/csv",
                                headers={"Content-Disposition": f'attachment; filename="tspipe-stats-{group_by}.csv"'})
        return web.Response(body=msgspec.json.encode(result), content_type="application/json")

    add_get(app, "/v1/stats", handle_stats)
