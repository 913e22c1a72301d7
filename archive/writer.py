"""Write a batch of events into the archive: one COPY per batch, idempotent on event_id.

The usual batch holds only events never archived before, dated by their body:
it is copied straight into `events` (binary COPY, routed to the day partitions),
under a savepoint. The primary key (occurred_at, event_id) refuses an event
already archived (a redelivery after a writer crash, a reclaimed batch); then
the savepoint is rolled back and the batch takes the careful path below. The
straight COPY costs PostgreSQL about half of the careful path's CPU per event
(bench/archive_cost.py): no temporary table written and read back, no sort, no
speculative insertion per row.

The careful path copies the batch into a temporary table and moves it into `events` with
INSERT ... SELECT DISTINCT ON (event_id) ... ON CONFLICT DO NOTHING, which
keeps the first copy of an event that appears twice in the batch and skips
one already archived (the primary key includes the body-derived occurred_at,
see migrations/0001_events.sql). Undated rows (filed by received_at) are
also checked against the partial `events_undated` index, under an advisory
lock, because a re-sent undated body may carry another received_at.

`Writer.archive(conn, rows)` is the one transaction per batch: whatever else
must commit together with the archive (hourly rollups) is called inside it,
with the rows that were new.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import psycopg

from archive import rollups
from archive.erase import ERASE_LOCK, LOCK_SHARED
from archive.partitions import PartitionCache
from archive.rows import ArchiveRow, copy_values

COLUMNS = (
    "occurred_at", "event_id", "received_at", "request_id", "undated", "kind", "channel", "outcome",
    "status_code", "reference_id", "phone_number", "email", "event", "raw",
)
_COLS = ", ".join(COLUMNS)
_INCOMING = "archive_incoming"
_UNDATED_LOCK = 0x7473_7069_7065_0003

_CREATE_INCOMING = (
    f"CREATE TEMP TABLE IF NOT EXISTS {_INCOMING} (LIKE events INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
)
_COPY = f"COPY {_INCOMING} ({_COLS}) FROM STDIN"
_COPY_DIRECT = f"COPY events ({_COLS}) FROM STDIN (FORMAT BINARY)"
# The event goes as bytea: its bytes are already json's binary form (rows.event_json_bytes), and psycopg's
# own json dumper would encode them again as a JSON string.
_TYPES = ("timestamptz", "text", "timestamptz", "text", "bool", "text", "text", "text", "int4", "text", "text",
          "text", "bytea", "bytea")
_EVENT = COLUMNS.index("event")
_MOVE = (
    f"INSERT INTO events ({_COLS}) "
    f"SELECT DISTINCT ON (i.event_id) {', '.join('i.' + c for c in COLUMNS)} FROM {_INCOMING} i "
    "WHERE NOT (i.undated AND EXISTS (SELECT 1 FROM events e WHERE e.undated AND e.event_id = i.event_id)) "
    "ORDER BY i.event_id, i.received_at "
    "ON CONFLICT DO NOTHING RETURNING event_id"
)


def _first_copies(rows: Sequence[ArchiveRow], values: list[tuple]) -> tuple[list[ArchiveRow], list[tuple]]:
    """One copy of each event_id (the earliest received, as the careful path keeps), in batch order."""
    index: dict[str, int] = {}
    duplicated = False
    for i, v in enumerate(values):
        j = index.get(v[1])
        if j is None:
            index[v[1]] = i
        else:
            duplicated = True
            if v[2] < values[j][2]:
                index[v[1]] = i
    if not duplicated:
        return list(rows), values
    keep = sorted(index.values())
    return [rows[i] for i in keep], [values[i] for i in keep]


class Writer:
    """Archives batches on one connection. Keeps which day partitions exist, so a batch costs no catalog query."""

    def __init__(self, retention_days: int = 90) -> None:
        self.partitions = PartitionCache(retention_days)
        self._incoming_on: int | None = None  # the connection (id of its pgconn) that has the temporary table

    def reset(self) -> None:
        """After a reconnect: make the temporary table again and re-read which partitions exist."""
        self._incoming_on = None
        self.partitions.forget()

    def write(self, cur: psycopg.Cursor, rows: Sequence[ArchiveRow]) -> list[ArchiveRow]:
        """Write `rows` inside the caller's transaction; return the rows that were not archived before."""
        if not rows:
            return []
        conn = cur.connection
        self.partitions.ensure(conn, {row.occurred_at.date() for row in rows})
        values = [copy_values(row) for row in rows]
        if not any(v[4] for v in values):  # no undated row: try the straight COPY
            unique, unique_values = _first_copies(rows, values)
            try:
                with conn.transaction():  # a savepoint: a refused COPY leaves the batch's transaction usable
                    with cur.copy(_COPY_DIRECT) as copy:
                        copy.set_types(_TYPES)
                        write_row = copy.write_row
                        for v in unique_values:
                            write_row(v)
                return unique
            except psycopg.errors.UniqueViolation:
                pass  # some were archived before: the careful path finds which
        return self._write_careful(cur, rows, values)

    def _write_careful(self, cur: psycopg.Cursor, rows: Sequence[ArchiveRow], values: list[tuple]) -> list[ArchiveRow]:
        conn = cur.connection
        if self._incoming_on != id(conn.pgconn):
            cur.execute(_CREATE_INCOMING)
            self._incoming_on = id(conn.pgconn)
        if any(row.event.occurred_at is None for row in rows):
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_UNDATED_LOCK,))
        with cur.copy(_COPY) as copy:
            write_row = copy.write_row
            for v in values:
                write_row((*v[:_EVENT], v[_EVENT].decode(), *v[_EVENT + 1:]))  # text COPY: the event as text
        cur.execute(_MOVE)
        new_ids = {event_id for (event_id,) in cur.fetchall()}
        if len(new_ids) == len(rows):
            return list(rows)
        new, seen = [], set()
        for row in rows:
            event_id = row.event.event_id
            if event_id in new_ids and event_id not in seen:
                seen.add(event_id)
                new.append(row)
        return new

    def archive(
        self,
        conn: psycopg.Connection,
        rows: Sequence[ArchiveRow],
        still_wanted: Callable[[Sequence[ArchiveRow]], Sequence[ArchiveRow]] | None = None,
    ) -> list[ArchiveRow]:
        """One transaction: the rows, and everything that must commit with them. Returns the new rows.

        `still_wanted` runs once the transaction holds the erasure lock (shared): the
        archive writer drops there the rows of backlog entries an erasure has scrubbed.
        """
        with conn.transaction(), conn.cursor() as cur:
            cur.execute(LOCK_SHARED, (ERASE_LOCK,))
            if still_wanted is not None:
                rows = still_wanted(rows)
            new = self.write(cur, rows)
            rollups.apply(cur, new)
        return new
