"""`tspipe deliver`: the delivery engine of the Procfile (`deliver`), which sends every webhook.

It runs apart from `tspipe worker` so that a receiver that never answers
holds one of its destination's slots in this process, never a process that
applies callbacks (see deliver/engine.py).
"""

from __future__ import annotations

import asyncio
import signal

import click

from config import ConfigError, tracing
from config.logging import configure_logging
from tspipe.context import settings_or_exit


@click.command("deliver")
def deliver_command() -> None:
    """Run the delivery engine: POST queued webhooks to every destination until stopped (SIGTERM, Ctrl-C)."""
    settings = settings_or_exit("deliver", need_redis=True)
    try:
        # Inside the try: importing workers/ builds the Celery app, which validates the destinations too.
        from workers.destinations import load_destinations

        destinations = load_destinations()
    except ConfigError as exc:
        click.echo(f"tspipe deliver: {exc}", err=True)
        raise SystemExit(2) from None
    configure_logging(settings)
    # Traces only when OTEL_EXPORTER_OTLP_ENDPOINT is set; the client instrumentation precedes the sessions.
    if tracing.setup("tspipe-deliver"):
        tracing.instrument_aiohttp_client()
    from deliver.engine import Engine

    engine = Engine(destinations, settings.redis_url, lease_grace=settings.delivery_lease_grace_seconds,
                    deadletter_max_bytes=settings.deadletter_max_bytes)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, engine.stop.set)
        await engine.run()

    try:
        import uvloop
    except ImportError:  # pragma: no cover - Windows
        asyncio.run(main())
    else:
        uvloop.run(main())
    tracing.flush()
