"""Day partitions of the events table: made ahead of time, dropped whole for retention.

Beat calls `maintain()`: it creates the partitions for yesterday through
AHEAD_DAYS ahead and drops every day partition older than the retention
(TSPIPE_ARCHIVE_DAYS), so retention never deletes row by row. The writer also
creates a missing day on demand (`PartitionCache`), so an archive whose beat
was down keeps filing rows by day. A row whose day is far from today (a clock
years off) goes to the default partition and is never refused; if its day's
partition is created later, its rows are moved out of the default partition
into it in the same transaction (PostgreSQL refuses to create a partition
whose rows sit in the default one).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta, timezone

import psycopg
from psycopg import sql

PARENT = "events"
DEFAULT = "events_default"
AHEAD_DAYS = 3
# The writer creates a missing partition on demand for a day up to this far ahead; later days
# go to the default partition until beat reaches them.
ON_DEMAND_AHEAD_DAYS = 7
_NAME = re.compile(r"^events_(\d{8})$")
_LOCK = 0x7473_7069_7065_0002  # one partition change at a time across processes


def name_of(day: date) -> str:
    return f"events_{day:%Y%m%d}"


def bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(), tzinfo=timezone.utc)
    return start, start + timedelta(days=1)


def today() -> date:
    return datetime.now(timezone.utc).date()


def existing(conn: psycopg.Connection) -> set[date]:
    """The days that have a partition."""
    rows = conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = %s::regclass",
        (PARENT,),
    ).fetchall()
    days = set()
    for (relname,) in rows:
        match = _NAME.match(relname)
        if match:
            days.add(datetime.strptime(match.group(1), "%Y%m%d").date())
    return days


def create(conn: psycopg.Connection, days: Iterable[date]) -> list[date]:
    """Create the missing day partitions among `days`, moving matching rows out of the default one.

    Runs in the caller's transaction (or its own); returns the days created.
    """
    created = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK,))
        have = existing(conn)
        for day in sorted(set(days) - have):
            start, end = bounds(day)
            table = sql.Identifier(name_of(day))
            waiting = conn.execute(
                sql.SQL("SELECT EXISTS (SELECT 1 FROM {} WHERE occurred_at >= %s AND occurred_at < %s)").format(
                    sql.Identifier(DEFAULT)), (start, end),
            ).fetchone()[0]
            if not waiting:
                conn.execute(sql.SQL("CREATE TABLE {} PARTITION OF {} FOR VALUES FROM ({}) TO ({})").format(
                    table, sql.Identifier(PARENT), sql.Literal(start), sql.Literal(end)))
            else:
                # Build it beside the table, move the default partition's rows of that day in, attach.
                conn.execute(sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)").format(
                    table, sql.Identifier(PARENT)))
                conn.execute(
                    sql.SQL("WITH moved AS (DELETE FROM {} WHERE occurred_at >= %s AND occurred_at < %s RETURNING *) "
                            "INSERT INTO {} SELECT * FROM moved").format(sql.Identifier(DEFAULT), table),
                    (start, end),
                )
                conn.execute(sql.SQL("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES FROM ({}) TO ({})").format(
                    sql.Identifier(PARENT), table, sql.Literal(start), sql.Literal(end)))
            created.append(day)
    return created


def drop_before(conn: psycopg.Connection, cutoff: date) -> list[date]:
    """Drop every day partition older than `cutoff` (whole tables, never row by row); returns their days."""
    dropped = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK,))
        for day in sorted(existing(conn)):
            if day < cutoff:
                conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(name_of(day))))
                dropped.append(day)
    return dropped


def retention_cutoff(days: int, on: date | None = None) -> date:
    """The oldest day kept: a partition is dropped once every row in it is older than `days` days."""
    return (on or today()) - timedelta(days=days)


def maintain(conn: psycopg.Connection, retention_days: int, on: date | None = None) -> tuple[list[date], list[date]]:
    """Beat's job: partitions for yesterday .. AHEAD_DAYS ahead, and retention. Returns (created, dropped)."""
    day = on or today()
    created = create(conn, (day + timedelta(days=n) for n in range(-1, AHEAD_DAYS + 1)))
    dropped = drop_before(conn, retention_cutoff(retention_days, day))
    return created, dropped


class PartitionCache:
    """The writer's view of which days have a partition, so a normal batch costs no catalog query."""

    def __init__(self, retention_days: int) -> None:
        self.retention_days = retention_days
        self.known: set[date] = set()

    def ensure(self, conn: psycopg.Connection, days: Iterable[date]) -> None:
        """Create the partitions of `days` that fall in the window the archive keeps by day."""
        wanted = set(days) - self.known
        if not wanted:
            return
        now = today()
        low, high = retention_cutoff(self.retention_days, now), now + timedelta(days=ON_DEMAND_AHEAD_DAYS)
        in_window = {d for d in wanted if low <= d <= high}
        self.known |= existing(conn)
        if in_window - self.known:
            create(conn, in_window - self.known)
            self.known |= in_window
        # Days outside the window go to the default partition; don't ask again for them.
        self.known |= wanted - in_window

    def forget(self) -> None:
        """After retention dropped tables or a reconnect: re-read the catalog on the next batch."""
        self.known.clear()
