"""A local aiohttp server standing in for Telesign's REST API (messaging, omnichannel)."""

from __future__ import annotations

import asyncio
import threading

from aiohttp import web


class FakeTelesign:
    """Answers the first `failures` requests with 500, then 200; records every request."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.requests: list[dict] = []
        self.loop = asyncio.new_event_loop()
        self.url = ""

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests.append(
            {"path": request.path, "auth": request.headers.get("Authorization"), "body": await request.read()}
        )
        if len(self.requests) <= self.failures:
            return web.json_response({"error": "boom"}, status=500)
        return web.json_response({"reference_id": "X", "status": {"code": 290}})

    def __enter__(self) -> FakeTelesign:
        started = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            web_app = web.Application()
            web_app.router.add_post("/v1/{tail:.*}", self._handle)
            self.runner = web.AppRunner(web_app)
            self.loop.run_until_complete(self.runner.setup())
            site = web.TCPSite(self.runner, "127.0.0.1", 0)
            self.loop.run_until_complete(site.start())
            port = site._server.sockets[0].getsockname()[1]
            self.url = f"http://127.0.0.1:{port}"
            started.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        started.wait(5)
        return self

    def __exit__(self, *exc) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
