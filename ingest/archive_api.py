"""The archive's routes on the web process: GET /v1/events and DELETE /v1/subjects/{address}.

Erasure runs in a thread on sync clients (store/erasure.py): it is rare, and
its Redis scans and the archive's transaction are simplest written straight.

Mounted with `setup_archive_api(app, settings)`. PostgreSQL is reached
through one async connection pool (psycopg_pool), opened at start-up without
waiting, so a web process starts and takes callbacks while PostgreSQL is
down; these routes then answer 503 and the callbacks are unaffected. With
DATABASE_URL unset the archive is off: one start-up line says so and the
routes answer 503 with that reason. Bearer-token protected like the other
read routes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import psycopg
import redis
import structlog
from aiohttp import web
from psycopg_pool import AsyncConnectionPool

from archive import search, transactions
from archive.migrate import migrate
from config import Settings
from store.erasure import ErasureKeyMissing, erase_everywhere, subject_pattern
from ingest.read_access import token_denied
from ingest.request_counts import add_get

log = structlog.get_logger("tspipe.archive")

POOL_KEY = web.AppKey("tspipe_archive_pool", AsyncConnectionPool)
QUERY_TIMEOUT_S = 3.0
ARCHIVE_OFF = "the archive is off: DATABASE_URL is not set"


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _migrate(url: str) -> None:
    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        migrate(conn)


def setup_archive_api(app: web.Application, settings: Settings) -> None:
    """Add GET /v1/events to `app` (and the archive pool that /v1/transactions falls back on)."""
    token = settings.api_token
    url = settings.database_url

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        if not url:
            log.info(ARCHIVE_OFF + "; /v1/events answers 503 and events are not archived")
            yield
            return
        try:
            await asyncio.to_thread(_migrate, url)
        except psycopg.Error as exc:
            log.warning("archive unreachable at start-up; search waits for it", error=str(exc).strip()[:200])
        pool = AsyncConnectionPool(url, min_size=1, max_size=4, open=False, timeout=QUERY_TIMEOUT_S,
                                   kwargs={"autocommit": True, "application_name": "tspipe-web"})
        await pool.open(wait=False)
        app[POOL_KEY] = pool
        yield
        await pool.close()

    app.cleanup_ctx.append(lifecycle)

    async def events(request: web.Request) -> web.Response:
        if denied := token_denied(request, token):
            return denied
        try:
            query = search.parse_query(request.query)
        except search.BadQuery as exc:
            return _error(400, str(exc))
        pool = request.app.get(POOL_KEY)
        if pool is None:
            return _error(503, ARCHIVE_OFF)
        statement, args = search.build(query)
        try:
            async with pool.connection() as conn:
                rows = await search.fetch_async(conn, statement, args)
        except (psycopg.Error, OSError) as exc:
            log.warning("archive search failed", error=type(exc).__name__)
            return _error(503, "the archive is unavailable; retry later")
        return web.Response(body=search.page(rows, query), content_type="application/json")

    async def erase(request: web.Request) -> web.Response:
        if denied := token_denied(request, token):
            return denied
        address = request.match_info["address"]
        try:
            subject_pattern(address)
        except ValueError as exc:
            return _error(400, str(exc))
        try:
            erased = await asyncio.to_thread(erase_everywhere, settings, address)
        except ErasureKeyMissing as exc:
            return _error(503, str(exc))
        except (psycopg.Error, OSError) as exc:
            log.warning("erasure failed: archive unavailable", error=type(exc).__name__)
            return _error(503, "the archive is unavailable, nothing was erased; retry later")
        except redis.RedisError as exc:
            log.warning("erasure failed: Redis unavailable", error=type(exc).__name__)
            return _error(503, "Redis is unavailable; retry later (erasure is safe to repeat)")
        log.info("subject erased", address=address, erased=erased)
        return web.json_response({"address": address, "erased": erased})

    add_get(app, "/v1/events", events)
    app.router.add_delete("/v1/subjects/{address}", erase)


async def archived_transaction(app: web.Application, reference_id: str) -> bytes | None:
    """GET /v1/transactions/{reference_id}'s body from the archive, or None (no archive, unknown, unreachable)."""
    pool = app.get(POOL_KEY)
    if pool is None:
        return None
    try:
        async with pool.connection() as conn:
            rows = await search.fetch_async(conn, transactions.SELECT, (reference_id,))
    except (psycopg.Error, OSError):
        return None
    return transactions.transaction_body(reference_id, [r[0] for r in rows])
