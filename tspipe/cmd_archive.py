"""`tspipe archive`: the archive writer process (Procfile `archive`), see workers/archiver.py."""

from __future__ import annotations

import signal
import sys
import threading

import click

from config.logging import configure_logging
from tspipe.context import settings_or_exit


@click.command("archive")
@click.option("--batch", type=int, default=256, show_default=True, help="Most backlog entries (queue batches) per transaction.")
@click.option("--linger-ms", type=click.IntRange(0, 60_000), default=500, show_default=True,
              help="How long a transaction waits for more events (from its oldest event's arrival) before it is "
                   "written, until it holds --min-events: bigger transactions cost PostgreSQL less per event.")
@click.option("--min-events", type=click.IntRange(1), default=2000, show_default=True,
              help="Events that make a transaction big enough to write without lingering.")
def archive_command(batch: int, linger_ms: int, min_events: int) -> None:
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
    archiver = Archiver(backlog, settings.database_url, settings.archive_days, batch_entries=batch,
                        linger_s=linger_ms / 1000, min_events=min_events)
    log.info("archive writer started", consumer=archiver.consumer, retention_days=settings.archive_days)
    archiver.run(stop)
    log.info("archive writer stopped")
