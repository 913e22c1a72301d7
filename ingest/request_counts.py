"""Requests by route and status, counted without an aiohttp middleware.

Any middleware wraps every request, callbacks included, and costs each one
~1.7 us of CPU (two more coroutine layers plus aiohttp's current_app
bookkeeping): about 5% of what a whole callback may cost. So the callback
handler counts itself, every other route is registered through add_get()
with a counting wrapper, and answer_unrouted() gives the 405 and 404 answers
aiohttp would give, counted under route "unmatched". Routes are the pattern,
never the raw path (bounded labels).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import hdrs, web

from ingest.metrics import IngestMetrics

METRICS_KEY = web.AppKey("metrics", IngestMetrics)
UNMATCHED = "unmatched"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def add_get(app: web.Application, path: str, handler: Handler) -> None:
    """app.router.add_get (HEAD included, as aiohttp does), with the requests counted under `path`."""
    app.router.add_get(path, counted(path, handler))


def add_counted(app: web.Application, method: str, path: str, handler: Handler) -> None:
    """app.router.add_route, with the requests counted under `path`."""
    app.router.add_route(method, path, counted(path, handler))


def counted(path: str, handler: Handler) -> Handler:
    """`handler`, counting each answer under `path` when the app has the ingress metrics."""

    async def answer(request: web.Request) -> web.StreamResponse:
        # An app may serve these routes without the ingress (the query API on its own): no counts then.
        metrics = request.app.get(METRICS_KEY)
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            if metrics is not None:
                metrics.count_request(path, exc.status)
            raise
        if metrics is not None:
            metrics.count_request(path, response.status)
        return response

    return answer


def answer_unrouted(app: web.Application) -> None:
    """405 for a known path with another method, 404 for any other path; call after every route is added."""

    async def not_allowed(request: web.Request) -> web.StreamResponse:
        allowed = {route.method for route in request.match_info.route.resource if route.method != hdrs.METH_ANY}
        request.app[METRICS_KEY].count_request(UNMATCHED, 405)
        raise web.HTTPMethodNotAllowed(request.method, allowed)

    async def not_found(request: web.Request) -> web.StreamResponse:
        request.app[METRICS_KEY].count_request(UNMATCHED, 404)
        raise web.HTTPNotFound()

    for resource in list(app.router.resources()):
        resource.add_route(hdrs.METH_ANY, not_allowed)
    app.router.add_route(hdrs.METH_ANY, "/{unmatched:.*}", not_found)
