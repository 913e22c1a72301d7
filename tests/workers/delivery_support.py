"""Real parts for the delivery tests: aiohttp servers in a thread, a real Celery worker, events.

The servers run on their own event loop in a background thread because the
code under test (Celery tasks, urllib) is synchronous.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone

from aiohttp import web
from celery.contrib.testing.worker import start_worker

from config.settings import reset_settings_cache
from pipeline.event import Action, Channel, Event, Kind, Outcome, Status

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class HttpServer:
    """A local aiohttp server; `handler` decides each answer, `calls` keeps every request."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.calls: list[tuple[dict[str, str], bytes, float]] = []
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.port = 0

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.calls.append(({k.lower(): v for k, v in request.headers.items()}, body, time.time()))
        return await self.handler(request)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> HttpServer:
        self._thread.start()
        self._ready.wait(5)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def bodies(self) -> list[dict]:
        return [json.loads(body) for _, body, _ in self.calls]


def make_event(n: int, kind: Kind = Kind.DELIVERY, outcome: Outcome = Outcome.DELIVERED, final: bool = True,
               channel: Channel = Channel.SMS, action: Action | None = None, code: int = 200) -> Event:
    now = datetime.now(timezone.utc)
    return Event(event_id=f"evt_{n:04d}", kind=kind, channel=channel, reference_id=f"ref{n}", external_id=None,
                 status=Status(code=code, description="x", final=final, outcome=outcome), occurred_at=now,
                 received_at=now, phone_number=f"1555000{n:04d}", email=None, sender=None, text=None,
                 action=action, keyword=action.value.upper() if action else None)


def destinations_env(monkeypatch, redis_url: str, destinations: list[dict], **extra: str) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("TSPIPE_DESTINATIONS", json.dumps(destinations))
    for name, value in extra.items():
        monkeypatch.setenv(name, value)
    reset_settings_cache()


@contextlib.contextmanager
def delivery_engine(lease_grace: float = 30.0):
    """The real delivery engine (deliver/engine.py) on its own event loop in a thread, for the current settings."""
    from config import get_settings
    from workers.destinations import load_destinations
    from deliver.engine import Engine

    engine = Engine(load_destinations(), get_settings().redis_url, lease_grace=lease_grace,
                    deadletter_max_bytes=get_settings().deadletter_max_bytes)
    loop = asyncio.new_event_loop()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            loop.run_until_complete(engine.run())
        except BaseException as exc:  # surfaced in the test below
            failure.append(exc)
        finally:
            loop.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield engine
    finally:
        loop.call_soon_threadsafe(engine.stop.set)
        thread.join(30)
    assert not failure, failure


def verify_all(secret: str, calls: list[tuple[dict[str, str], bytes, float]]) -> None:
    """Every request verified by svix, the Standard Webhooks library nobody here wrote (raises if one fails)."""
    from svix.webhooks import Webhook

    hook = Webhook(secret)
    for headers, body, _ in calls:
        hook.verify(body, headers)


@contextlib.contextmanager
def celery_worker(concurrency: int = 4):
    """A real Celery worker (threads pool) consuming the default and every destination queue."""
    from workers.app import make_celery

    app = make_celery()
    app.set_current()
    with start_worker(app, pool="threads", concurrency=concurrency, perform_ping_check=False,
                      shutdown_timeout=10, loglevel="WARNING"):
        yield app


def wait_for(predicate: Callable[[], bool], timeout: float = 15.0, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()
