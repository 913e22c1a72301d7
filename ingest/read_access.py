"""What the web process's read endpoints (query API, dashboard) share: one Redis client and the token check.

One client (one connection pool) for all read endpoints of an app, however
many of them are mounted, and one constant-time bearer-token check, so the
two cannot drift apart on how a token is accepted.
"""

from __future__ import annotations

import hmac

import redis.asyncio as aioredis
from aiohttp import web

from config import Settings
from store import connection

STORE_KEY = web.AppKey("tspipe_read_redis", aioredis.Redis)


def use_store_client(app: web.Application, settings: Settings) -> None:
    """Give `app` its read endpoints' Redis client, once; it connects on first use and closes at cleanup."""
    if STORE_KEY in app:
        return
    app[STORE_KEY] = connection.connect_async(settings.redis_url)

    async def close(app: web.Application) -> None:
        await app[STORE_KEY].aclose()

    app.on_cleanup.append(close)


def token_denied(request: web.Request, token: str | None, allow_query: bool = False) -> web.Response | None:
    """None when the request may read, else the 401 to answer.

    `allow_query` also accepts `?token=`, for a page a browser loads by URL;
    the API itself takes only the Authorization header, so tokens stay out of URLs and access logs.
    """
    if not token:
        return None
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" and allow_query:
        given = request.query.get("token", "")
    elif scheme.lower() != "bearer":
        given = ""
    if hmac.compare_digest(given.strip().encode(), token.encode()):
        return None
    hint = ": use Authorization: Bearer <token> or ?token=" if allow_query else ""
    return web.json_response({"error": f"missing or wrong bearer token{hint}"}, status=401,
                             headers={"WWW-Authenticate": "Bearer"})
