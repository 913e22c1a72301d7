"""The archive writer: drains the Redis backlog into PostgreSQL (`tspipe archive`, Procfile `archive`).

Why a process of its own rather than a Celery task or a thread in a worker:
it holds one PostgreSQL connection and a consumer-group cursor for as long
as it runs, writes one transaction per read of up to `batch_entries`
batches (topped up for up to `linger_s` until it holds `min_events`, since
PostgreSQL's CPU per event falls as transactions grow), and when PostgreSQL is down it simply waits and retries the same
entries, with nothing else in that process to hold up. The Celery workers
never open a PostgreSQL connection on the hot path, and the writer's CPU per
event is its own process's CPU (what bench/stack.py --archive reports).
Several writers may run: the consumer group shares the entries, a dead
writer's entries are reclaimed after RECLAIM_IDLE_MS, and the archive's
primary key makes a batch written twice harmless. One writer and its
PostgreSQL spend ~75 µs of CPU per event (~0.4 cores at 5,000/s; measured up
to 2,200/s with the backlog empty, BENCHMARKS.md, Archive), so nothing starts
several by default.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable

import psycopg
import structlog

import pipeline
from archive.migrate import migrate
from archive.rows import ArchiveRow, utc
from archive.writer import Writer
from pipeline.errors import InvalidCallback
from pipeline.event import Source
from pipeline.record import decode_batch
from store.archive_backlog import Backlog, Entry

log = structlog.get_logger("tspipe.archive")

# received_at -> committed to PostgreSQL, seconds.
LAG_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0)
LAG = "tspipe_archive_lag_seconds"
RECLAIM_IDLE_MS = 60_000
RECLAIM_EVERY_S = 10.0
RETRY_MAX_S = 5.0
# A transaction waits this long (from its oldest entry's arrival) for more entries, until it holds
# MIN_EVENTS: PostgreSQL's and the writer's CPU per event fall as a transaction grows (the rollup
# rows a batch touches cost about the same for 100 events as for 2,000; bench/archive_cost.py).
LINGER_S = 0.5
LINGER_STEP_S = 0.1
MIN_EVENTS = 2000


def rows_of(entries: list[Entry]) -> list[ArchiveRow]:
    """Decode the backlog's records again (the body is the source of truth; a bad one was quarantined)."""
    return [row for _, row in rows_by_entry(entries)]


def rows_by_entry(entries: list[Entry]) -> list[tuple[bytes, ArchiveRow]]:
    """(backlog entry id, row) for every record that decodes."""
    rows = []
    decode = pipeline.decode
    for entry in entries:
        source = Source.POLL if entry.source == Source.POLL.value else Source.CALLBACK
        for record in decode_batch(entry.blob):
            received = utc(record.received_at)
            try:
                event = decode(record.body, channel_hint=record.channel_hint, received_at=received, source=source)
            except InvalidCallback:
                continue
            except Exception:  # a decoder bug: the worker quarantined it with the reason
                continue
            rows.append((entry.id, ArchiveRow(event=event, body=record.body, received_at=received,
                                              request_id=record.request_id)))
    return rows


class Archiver:
    """One writer: read a slice of the backlog, write it in one transaction, acknowledge it."""

    def __init__(
        self,
        backlog: Backlog,
        database_url: str,
        retention_days: int = 90,
        batch_entries: int = 256,
        block_ms: int = 1000,
        consumer: str | None = None,
        linger_s: float = LINGER_S,
        min_events: int = MIN_EVENTS,
    ) -> None:
        self.backlog = backlog
        self.database_url = database_url
        self.writer = Writer(retention_days)
        self.batch_entries = batch_entries
        self.block_ms = block_ms
        self.linger_s = linger_s
        self.min_events = min_events
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}"
        self.conn: psycopg.Connection | None = None
        self._migrated = False
        # Our own unacknowledged entries are read again only after a start or a failure; a dead
        # writer's are looked for every RECLAIM_EVERY_S: neither costs a round trip per batch.
        self._own_pending = True
        self._next_reclaim = 0.0

    def connection(self) -> psycopg.Connection:
        if self.conn is None or self.conn.closed:
            self.conn = psycopg.connect(self.database_url, autocommit=True, connect_timeout=5,
                                        application_name="tspipe-archive")
            if not self._migrated:
                for name in migrate(self.conn):
                    log.info("archive schema migrated", migration=name)
                self._migrated = True
            self.writer.reset()
        return self.conn

    def run_once(self) -> int:
        """Archive one slice of the backlog; returns the events it held (new or not). Raises on failures."""
        now = time.monotonic()
        reclaim = now >= self._next_reclaim
        if reclaim:
            self._next_reclaim = now + RECLAIM_EVERY_S
        own_pending, self._own_pending = self._own_pending, True  # stays True if this read or write fails
        entries = self.backlog.read(self.consumer, self.batch_entries, self.block_ms, RECLAIM_IDLE_MS,
                                    own_pending=own_pending, reclaim=reclaim)
        if not entries:
            self._own_pending = False
            return 0
        pairs = rows_by_entry(entries)
        if self.linger_s > 0:
            entries, pairs = self._top_up(entries, pairs)
        rows = [row for _, row in pairs]

        def still_wanted(rows: list[ArchiveRow]) -> list[ArchiveRow]:
            # Under the erasure lock: an erasure that ran since the read has scrubbed (replaced) entries.
            live = self.backlog.existing([entry.id for entry in entries])
            return rows if len(live) == len(entries) else [row for entry_id, row in pairs if entry_id in live]

        self.writer.archive(self.connection(), rows, still_wanted)
        self.backlog.done(entries, len(rows), self._lag_counters(rows, time.time()))
        self._own_pending = False
        return len(rows)

    def _top_up(self, entries: list[Entry], pairs: list[tuple[bytes, ArchiveRow]]
                ) -> tuple[list[Entry], list[tuple[bytes, ArchiveRow]]]:
        """Wait for more new entries (LINGER_S from the oldest one's arrival at most) until the transaction
        holds min_events events or batch_entries entries. Idle or light load: at most linger_s more lag."""
        now = time.time()
        # Stream ids carry Redis's clock: never wait longer than linger_s on ours, whatever the skew.
        deadline = min(min(entry.added_at for entry in entries) + self.linger_s, now + self.linger_s)
        while len(entries) < self.batch_entries and len(pairs) < self.min_events:
            remaining = deadline - time.time()
            if remaining <= 0:
                break
            time.sleep(min(remaining, LINGER_STEP_S))
            more = self.backlog.read_new(self.consumer, self.batch_entries - len(entries))
            if more:
                entries = entries + more
                pairs = pairs + rows_by_entry(more)
        return entries, pairs

    @staticmethod
    def _lag_counters(rows: list[ArchiveRow], now: float) -> dict[str, float]:
        """received -> committed, as increments of the metrics hash's histogram fields."""
        if not rows:
            return {}
        buckets = [0] * len(LAG_BUCKETS)
        total = 0.0
        for row in rows:
            lag = max(0.0, now - row.received_at.timestamp())
            total += lag
            for i, le in enumerate(LAG_BUCKETS):
                if lag <= le:
                    buckets[i] += 1
        counters: dict[str, float] = {f'{LAG}_bucket{{le="{le}"}}': n for le, n in zip(LAG_BUCKETS, buckets) if n}
        counters[f'{LAG}_bucket{{le="+Inf"}}'] = len(rows)
        counters[f"{LAG}_sum"] = float(total)
        counters[f"{LAG}_count"] = len(rows)
        return counters

    def run(self, stop: threading.Event, on_error: Callable[[Exception], None] | None = None) -> None:
        """Until `stop` is set: archive, and on a failure wait (0.25 s doubling to RETRY_MAX_S) and retry
        the same entries. Nothing is acknowledged before it is committed."""
        self.backlog.ensure_group()
        delay = 0.25
        failing = False
        while not stop.is_set():
            try:
                self.run_once()
            except (psycopg.Error, OSError) as exc:
                if not failing:
                    log.error("archive: PostgreSQL unavailable; events wait in the Redis backlog",
                              error=f"{type(exc).__name__}: {exc}".strip()[:300])
                failing = True
                self._close()
                stop.wait(delay)
                delay = min(delay * 2, RETRY_MAX_S)
                continue
            except Exception as exc:  # Redis down or a bug: keep the process, retry after a pause
                log.error("archive: writer failed; retrying", error=f"{type(exc).__name__}: {exc}"[:300])
                if on_error:
                    on_error(exc)
                stop.wait(delay)
                delay = min(delay * 2, RETRY_MAX_S)
                continue
            if failing:
                log.info("archive: PostgreSQL is back; catching up")
                failing = False
            delay = 0.25
        self._close()

    def _close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:
                pass
            self.conn = None
