"""Retention for insight_messages, the per-message table behind the rollups: whole partitions, dropped by beat.

Why generations and not day partitions like `events`: the rollup code finds a
message by reference id alone (a callback does not say when its message was
first seen), so each lookup probes every partition that may hold it. Ninety day
partitions would make that ninety index probes per callback; a generation spans
an eighth of the retention, so a lookup probes at most about ten.

A message's row is made in the generation current when its first callback was
archived (migrations/0052). `rotate()` (beat, hourly, with the events'
partitions) starts a new generation once the current one is GENERATIONS_PER_RETENTION-th
of TSPIPE_ARCHIVE_DAYS old, and drops each generation whose successor began
more than TSPIPE_ARCHIVE_DAYS ago: every message in it was first seen before
the retention cutoff, so its events are gone too (or going). Rows therefore
live between TSPIPE_ARCHIVE_DAYS and that plus a generation's span. A callback
for a message whose row was dropped counts it as a new message, in the hour it
says it was sent (long past the retention; the rollups of those hours are kept).

Rotation takes a lock that waits for the archive writers' open transactions and
holds new ones back for its few milliseconds, so a writer never sees two
current generations and one message never gets two rows.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import psycopg
from psycopg import sql

PARENT = "insight_messages"
GENERATIONS_PER_RETENTION = 8


def span_of(retention_days: int) -> timedelta:
    """How long one generation is current: an eighth of the retention, at least a day."""
    return timedelta(days=max(1, math.ceil(retention_days / GENERATIONS_PER_RETENTION)))


def name_of(generation: int) -> str:
    return f"insight_messages_g{generation}"


def generations(conn: psycopg.Connection) -> list[tuple[int, datetime]]:
    """(generation, started) of every generation that still has its partition, oldest first."""
    return [(g, started) for g, started in conn.execute(
        "SELECT generation, started FROM insight_message_generations ORDER BY generation")]


def rotate(conn: psycopg.Connection, retention_days: int, now: datetime | None = None) -> tuple[list[int], list[int]]:
    """Beat's job: start a generation when the current one has had its span, drop expired ones.

    Returns (started, dropped) generation numbers. Runs in its own transaction.
    """
    now = now or datetime.now(timezone.utc)
    started: list[int] = []
    dropped: list[int] = []
    with conn.transaction():
        have = generations(conn)
        current, since = have[-1]
        expired = [g for (g, _), (_, next_start) in zip(have, have[1:]) if next_start < now - timedelta(days=retention_days)]
        if now - since < span_of(retention_days) and not expired:
            return started, dropped
        # Writers claim rows in the current generation: wait for theirs to commit, hold new ones back.
        conn.execute(sql.SQL("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE").format(sql.Identifier(PARENT)))
        if now - since >= span_of(retention_days):
            new = current + 1
            conn.execute("INSERT INTO insight_message_generations (generation, started) VALUES (%s, %s)", (new, now))
            conn.execute(sql.SQL("CREATE TABLE {} PARTITION OF {} FOR VALUES IN ({})").format(
                sql.Identifier(name_of(new)), sql.Identifier(PARENT), sql.Literal(new)))
            started.append(new)
        for g in expired:
            conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(name_of(g))))
            conn.execute("DELETE FROM insight_message_generations WHERE generation = %s", (g,))
            dropped.append(g)
    return started, dropped
