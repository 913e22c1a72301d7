"""GET /openapi.json: the HTTP interface as an OpenAPI 3.1 document.

The document is a data file next to this module (ingest/openapi.json), not
generated from the handlers: it is the written promise, and
tests/ingest/test_openapi.py holds the live app to it with schemathesis.
Whoever adds a route adds it there. It holds no data, so it needs no token.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from ingest.request_counts import add_get

SPEC = Path(__file__).with_name("openapi.json")


def setup_openapi(app: web.Application) -> None:
    body = SPEC.read_bytes()

    async def openapi(_: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    add_get(app, "/openapi.json", openapi)
