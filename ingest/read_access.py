"""What the web process's read endpoints (query API, dashboard) share: one Redis client, the access rule, 503s.

One client (one connection pool) for all read endpoints of an app, however
many of them are mounted, and one constant-time bearer-token check, so the
two cannot drift apart on how a token is accepted. Without a token they
answer loopback clients only: they list full phone numbers, and the web
process binds 0.0.0.0 by default. While Redis does not answer they say so
with a 503 and a JSON reason, never a 500 with a traceback.
"""

from __future__ import annotations

import functools
import hmac
import ipaddress
from collections.abc import Awaitable, Callable

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


NO_TOKEN_WARNING = ("TSPIPE_API_TOKEN is not set: the read API and the dashboard answer loopback clients only "
                    "(403 to anyone else)")
NO_TOKEN_HINT = "set TSPIPE_API_TOKEN to read /v1 and /dashboard from other hosts"


def is_loopback(remote: str | None) -> bool:
    """True for 127.0.0.0/8, ::1 (also IPv4-mapped) and a unix socket (no address): this host."""
    if not remote:
        return True
    try:
        address = ipaddress.ip_address(remote.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


def token_denied(request: web.Request, token: str | None, allow_query: bool = False) -> web.Response | None:
    """None when the request may read, else the 401 (or, with no token configured, 403) to answer.

    `allow_query` also accepts `?token=`, for a page a browser loads by URL;
    the API itself takes only the Authorization header, so tokens stay out of URLs and access logs.
    """
    if not token:
        if is_loopback(request.remote):
            return None
        return web.json_response({"error": f"TSPIPE_API_TOKEN is not set, so only this host may read: {NO_TOKEN_HINT}"},
                                 status=403)
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


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def store_errors_as_503(handler: Handler) -> Handler:
    """Answer 503 with a JSON reason while Redis does not answer, as /readyz does, instead of a 500."""

    @functools.wraps(handler)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except (aioredis.RedisError, OSError, TimeoutError) as exc:
            return web.json_response({"error": f"store unreachable: {type(exc).__name__}; retry later"}, status=503,
                                     headers={"Retry-After": "1"})

    return wrapper
