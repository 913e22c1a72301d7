"""Beat's archive job: day partitions ahead of time, and retention by dropping whole partitions.

The events' day partitions, and the generations of the delivery figures' per-message table
(archive/message_generations.py), both by TSPIPE_ARCHIVE_DAYS.
"""

from __future__ import annotations

import psycopg
import structlog
from celery import shared_task

from archive import message_generations, partitions
from archive.migrate import migrate
from config import get_settings

log = structlog.get_logger("tspipe.archive")

ARCHIVE_MAINTAIN_TASK = "tspipe.archive_maintain"
# Hourly: partitions are made AHEAD_DAYS ahead, so a missed run or two changes nothing.
INTERVAL_SECONDS = 3600.0


def maintain(database_url: str, retention_days: int) -> tuple[list, list]:
    with psycopg.connect(database_url, autocommit=True, connect_timeout=10, application_name="tspipe-beat") as conn:
        migrate(conn)
        created, dropped = partitions.maintain(conn, retention_days)
        started, expired = message_generations.rotate(conn, retention_days)
    if created or dropped:
        log.info("archive partitions", created=[d.isoformat() for d in created],
                 dropped=[d.isoformat() for d in dropped], retention_days=retention_days)
    if started or expired:
        log.info("insight message generations", started=started, dropped=expired, retention_days=retention_days)
    return created, dropped


@shared_task(name=ARCHIVE_MAINTAIN_TASK, ignore_result=True)
def archive_maintain() -> int:
    settings = get_settings()
    if not settings.database_url:
        return 0
    return len(maintain(settings.database_url, settings.archive_days)[1])
