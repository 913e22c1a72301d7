"""`tspipe archive`: the archive writer process (Procfile `archive`), see workers/archiver.py."""

from __future__ import annotations

import signal
import sys
import threading

import click

from config.logging import configure_logging
from tspipe.context import settings_or_exit


@click.command("archive")
@click.option("--batch", type=int, default=64, show_default=True, help="Backlog entries (queue batches) per transaction.")
def archive_command(batch: int) -> None:
    """Write the events waiting in Redis to the PostgreSQL archive (DATABASE_URL), until stopped."""
    settings = settings_or_exit("archive", need_redis=True)
    configure_logging(settings)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if not settings.database_url:
        # Idle rather than exit: under a Procfile runner an exiting process stops (or restarts) the rest.
        click.echo("tspipe archive: the archive is off (DATABASE_URL is not set); idle until stopped", err=True)
        stop.wait()
        sys.exit(0)
    from store.archive_backlog import Backlog
    from store.connection import connect
    from workers.archiver import Archiver, log

    backlog = Backlog(connect(settings.redis_url), settings.archive_backlog_max_bytes)
    archiver = Archiver(backlog, settings.database_url, settings.archive_days, batch_entries=batch)
    log.info("archive writer started", consumer=archiver.consumer, retention_days=settings.archive_days)
    archiver.run(stop)
    log.info("archive writer stopped")
