"""The archive's backlog: batches waiting in Redis to be written to PostgreSQL.

A worker adds each batch it decodes here (one XADD of the batch's records,
the same bytes the ingress queued) BEFORE it applies the batch; the archive
writer (`tspipe archive`) reads them with a consumer group, writes them to
PostgreSQL and only then acknowledges and deletes them. So PostgreSQL being
down or slow never holds up a worker: batches wait here, and the writer
catches up. Why before applying, and every event rather than only new ones:
a worker killed between applying and adding would leave events applied in
Redis (a redelivery sees only duplicates) but never archived. Added first, the
worst case is an event in the backlog twice, which the archive's primary
key absorbs (archive/writer.py).

The backlog is bounded in bytes (TSPIPE_ARCHIVE_BACKLOG_MAX_BYTES) by a
counter kept next to the stream in the same scripts: past the bound a batch
is not added, `tspipe_archive_dropped_total` counts its records, and the
hot path goes on. Redis memory is the thing being protected.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import redis

from store import keys

# Stream entries' fields: b = the batch (msgpack list of Records), s = source ("callback" or "poll").
STREAM = keys.ARCHIVE_BACKLOG
BYTES = keys.ARCHIVE_BACKLOG_BYTES
GROUP = keys.ARCHIVE_GROUP
METRICS = keys.METRICS
DROPPED = "tspipe_archive_dropped_total"

# KEYS[1] stream, KEYS[2] byte counter, KEYS[3] metrics hash.
# ARGV[1] most bytes, ARGV[2] the batch (msgpack records), ARGV[3] source, ARGV[4] records in it.
# Returns 1 when added, 0 when the backlog is full (the records are counted as dropped).
_ADD = r"""
local size = #ARGV[2]
local held = tonumber(redis.call('GET', KEYS[2]) or '0')
if held + size > tonumber(ARGV[1]) then
  redis.call('HINCRBY', KEYS[3], 'tspipe_archive_dropped_total', tonumber(ARGV[4]))
  return 0
end
redis.call('XADD', KEYS[1], '*', 'b', ARGV[2], 's', ARGV[3])
redis.call('INCRBY', KEYS[2], size)
return 1
"""

# KEYS[1] stream, KEYS[2] byte counter, KEYS[3] metrics hash.
# ARGV[1] group, ARGV[2] events archived, then pairs (entry id, entry bytes).
# Acknowledges and deletes the entries; frees the bytes of those actually deleted (an entry
# handed back twice after a writer crash is freed once).
_DONE = r"""
local freed = 0
for i = 3, #ARGV, 2 do
  redis.call('XACK', KEYS[1], ARGV[1], ARGV[i])
  if redis.call('XDEL', KEYS[1], ARGV[i]) == 1 then freed = freed + tonumber(ARGV[i + 1]) end
end
if freed > 0 then redis.call('DECRBY', KEYS[2], freed) end
redis.call('HINCRBY', KEYS[3], 'tspipe_archive_events_total', tonumber(ARGV[2]))
return freed
"""


# KEYS[1] stream, KEYS[2] byte counter. ARGV[1] group, ARGV[2] entry id, ARGV[3] its bytes,
# ARGV[4] the batch without the erased records ('' for none left), ARGV[5] source.
# Replaces an entry by a scrubbed copy (a new id at the end of the stream); 0 if it was gone already.
_REPLACE = r"""
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
if redis.call('XDEL', KEYS[1], ARGV[2]) == 0 then return 0 end
redis.call('DECRBY', KEYS[2], tonumber(ARGV[3]))
if #ARGV[4] > 0 then
  redis.call('XADD', KEYS[1], '*', 'b', ARGV[4], 's', ARGV[5])
  redis.call('INCRBY', KEYS[2], #ARGV[4])
end
return 1
"""


class Entry:
    """One batch read from the backlog."""

    __slots__ = ("id", "blob", "source")

    def __init__(self, entry_id: bytes, blob: bytes, source: str) -> None:
        self.id = entry_id
        self.blob = blob
        self.source = source

    @property
    def added_at(self) -> float:
        """When the batch was added: a stream id is its time in milliseconds."""
        return int(self.id.split(b"-", 1)[0]) / 1000


class Backlog:
    """The worker side (add) and the writer side (read, done) of the backlog, on one sync client."""

    def __init__(self, client: redis.Redis, max_bytes: int = 1024 * 1024 * 1024) -> None:
        self.client = client
        self.max_bytes = max_bytes
        self._add = client.register_script(_ADD)
        self._done = client.register_script(_DONE)
        self._replace = client.register_script(_REPLACE)

    def add(self, blob: bytes, records: int, source: str = "callback") -> bool:
        """Queue one batch for the archive; False (and counted) when the backlog is full."""
        return bool(self._add(keys=[STREAM, BYTES, METRICS], args=[self.max_bytes, blob, source, records]))

    def ensure_group(self) -> None:
        try:
            self.client.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def read(self, consumer: str, count: int, block_ms: int, reclaim_idle_ms: int = 60_000,
             own_pending: bool = True, reclaim: bool = True) -> list[Entry]:
        """Batches to archive: this consumer's own unacknowledged ones first (own_pending: after a start or
        a failure), then ones a dead writer left (idle for reclaim_idle_ms; when `reclaim`), then new ones,
        waiting up to block_ms for them."""
        if own_pending:
            entries = self._parse(self.client.xreadgroup(GROUP, consumer, {STREAM: "0"}, count=count))
            if entries:
                return entries
        if reclaim:
            claimed = self.client.xautoclaim(STREAM, GROUP, consumer, reclaim_idle_ms, "0-0", count=count)
            entries = [self._entry(eid, fields) for eid, fields in claimed[1] if fields]
            if entries:
                return entries
        return self._parse(self.client.xreadgroup(GROUP, consumer, {STREAM: ">"}, count=count, block=block_ms))

    def read_new(self, consumer: str, count: int) -> list[Entry]:
        """New batches only, without waiting (the writer topping up a transaction)."""
        return self._parse(self.client.xreadgroup(GROUP, consumer, {STREAM: ">"}, count=count))

    def done(self, entries: Sequence[Entry], events: int, counters: dict[str, float] | None = None) -> None:
        """The entries are in PostgreSQL: acknowledge, delete, free their bytes, count the events (and add
        `counters` to the metrics hash), in one round trip."""
        args: list = [GROUP, events]
        for entry in entries:
            args += [entry.id, len(entry.blob)]
        pipe = self.client.pipeline(transaction=False)
        self._done(keys=[STREAM, BYTES, METRICS], args=args, client=pipe)
        for field, value in (counters or {}).items():
            if isinstance(value, int):
                pipe.hincrby(METRICS, field, value)
            else:
                pipe.hincrbyfloat(METRICS, field, value)
        pipe.execute()

    def entries(self, chunk: int = 500):
        """Every entry waiting, oldest first (for erasure)."""
        start = "-"
        while True:
            found = self.client.xrange(STREAM, start, "+", count=chunk)
            for entry_id, fields in found:
                yield self._entry(entry_id, fields)
            if len(found) < chunk:
                return
            start = "(" + found[-1][0].decode()

    def replace(self, entry: Entry, blob: bytes) -> bool:
        """Swap an entry for a scrubbed copy of its batch (b'' drops it); False if a writer finished it first."""
        return bool(self._replace(keys=[STREAM, BYTES], args=[GROUP, entry.id, len(entry.blob), blob, entry.source]))

    def existing(self, ids: Sequence[bytes]) -> set[bytes]:
        """Which of these entries are still in the stream (an erasure replaces the ones it scrubs)."""
        pipe = self.client.pipeline(transaction=False)
        for entry_id in ids:
            pipe.xrange(STREAM, entry_id, entry_id)
        return {entry_id for entry_id, found in zip(ids, pipe.execute()) if found}

    def size(self) -> tuple[int, int, float]:
        """(batches waiting, bytes waiting, age in seconds of the oldest or 0) for tests and benchmarks."""
        pipe = self.client.pipeline(transaction=False)
        queue_gauges(pipe)
        figures = gauges(pipe.execute())
        return (figures["tspipe_archive_backlog_batches"], figures["tspipe_archive_backlog_bytes"],
                figures["tspipe_archive_backlog_oldest_seconds"])

    @staticmethod
    def _entry(entry_id: bytes, fields: dict) -> Entry:
        return Entry(entry_id, fields.get(b"b", b""), fields.get(b"s", b"callback").decode())

    def _parse(self, reply) -> list[Entry]:
        if not reply:
            return []
        return [self._entry(eid, fields) for eid, fields in reply[0][1] if fields]


def queue_gauges(pipe) -> None:
    """Add the backlog's size reads to an (async or sync) pipeline; `gauges` turns their answers into figures."""
    pipe.xlen(STREAM)
    pipe.get(BYTES)
    pipe.xrange(STREAM, count=1)


def gauges(answers: list, now: float | None = None) -> dict[str, float]:
    """/metrics figures from queue_gauges' three answers: batches and bytes waiting, and how long the oldest has."""
    length, held, first = answers
    oldest = Entry(first[0][0], b"", "").added_at if first else None
    now = time.time() if now is None else now
    return {
        "tspipe_archive_backlog_batches": length,
        "tspipe_archive_backlog_bytes": int(held or 0),
        "tspipe_archive_backlog_oldest_seconds": round(max(0.0, now - oldest), 3) if oldest is not None else 0,
    }
