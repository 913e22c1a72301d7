"""Where the archive's CPU goes: PostgreSQL's and the writer's CPU per event, variant by variant, same run.

Archives N callbacks (the bodies bench/stack.py sends: every bundled sample shape, each with its own
reference id) in batches of --batch through archive/writer.py into an embedded PostgreSQL (pgserver),
once per variant, each into a fresh schema, and prints per variant: the writer's CPU per event
(this process), the PostgreSQL backend's CPU per event (/proc of the connection's backend), all of
PostgreSQL's processes' CPU per event (WAL writer, checkpointer...), WAL bytes per event and table
bytes per event. Variants switch off one part at a time (rollups, each index, ...) so the
differences split the cost.

    .venv/bin/python bench/archive_cost.py [-n 40000] [--batch 1000] [--variants baseline,norollups,...]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from archive.embedded import database_url, start  # noqa: E402
from archive.migrate import migrate  # noqa: E402
from archive.writer import Writer  # noqa: E402
from pipeline.record import Record, encode_batch  # noqa: E402
from store.archive_backlog import Entry  # noqa: E402
from tests.faults.support import unique_callbacks  # noqa: E402
from workers.archiver import rows_by_entry  # noqa: E402

from proc_cpu import cpu_seconds, tree_cpu_seconds  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")






def entries(n: int, per_entry: int, start: int) -> list[Entry]:
    """Backlog entries as the workers add them: batches of records (what the writer decodes)."""
    items = unique_callbacks(n, start=start)
    now = time.time()
    out = []
    for i in range(0, n, per_entry):
        records = [Record(body=body, received_at=now, channel_hint=channel, request_id=f"req-{start + i + j}")
                   for j, (channel, body) in enumerate(items[i:i + per_entry])]
        out.append(Entry(b"%d-0" % (i + 1), encode_batch(records), "callback"))
    return out


VARIANTS: dict[str, tuple[str, Callable | None]] = {}


def variant(name: str, doc: str):
    def register(fn):
        VARIANTS[name] = (doc, fn)
        return fn
    return register


@variant("baseline", "Writer.archive as it is: events and rollups in one transaction")
def _baseline(conn, writer):
    return lambda rows: writer.archive(conn, rows)


@variant("norollups", "Writer.write alone (no rollups)")
def _norollups(conn, writer):
    def write(rows):
        with conn.transaction(), conn.cursor() as cur:
            return writer.write(cur, rows)
    return write


def _drop(index: str):
    def setup(conn, writer):
        conn.execute(f"DROP INDEX {index}")
        return lambda rows: writer.archive(conn, rows)
    return setup


for _index in ("events_phone", "events_email", "events_reference", "events_undated"):
    variant(f"no_{_index}", f"baseline without the {_index} index")(_drop(_index))


@variant("noindexes", "baseline without any secondary index (primary key only)")
def _noindexes(conn, writer):
    for index in ("events_phone", "events_email", "events_reference", "events_undated"):
        conn.execute(f"DROP INDEX {index}")
    return lambda rows: writer.archive(conn, rows)


@variant("careful", "every batch through the careful path (temporary table, INSERT ... ON CONFLICT): the old writer")
def _careful(conn, writer):
    from archive.rows import copy_values

    def write(cur, rows):
        writer.partitions.ensure(cur.connection, {row.occurred_at.date() for row in rows})
        return writer._write_careful(cur, rows, [copy_values(row) for row in rows])
    writer.write = write
    return lambda rows: writer.archive(conn, rows)


@variant("jsonb", "the event column as jsonb (as before migration 0002)")
def _jsonb(conn, writer):
    import archive.rows

    conn.execute("ALTER TABLE events ALTER COLUMN event TYPE jsonb")
    encode = archive.rows.event_json_bytes

    def write(rows):
        archive.rows.event_json_bytes = lambda event: b"\x01" + encode(event)  # jsonb's binary form
        try:
            return writer.archive(conn, rows)
        finally:
            archive.rows.event_json_bytes = encode
    return write


@variant("old", "the writer before this change: jsonb, careful path, every message claimed, locked and updated")
def _old(conn, writer):
    from archive import rollups

    conn.execute("ALTER TABLE events ALTER COLUMN event TYPE jsonb")
    careful = _careful(conn, writer)  # a text COPY: the event's text suits jsonb as well

    def write(rows):
        apply_messages = rollups._apply_messages
        rollups._apply_messages = lambda cur, by_ref, delta: rollups._update_messages(cur, sorted(by_ref), by_ref, delta)
        try:
            return careful(rows)
        finally:
            rollups._apply_messages = apply_messages
    return write


@variant("claimlock", "new, but every message claimed, locked and updated in the rollups (as before)")
def _claimlock(conn, writer):
    from archive import rollups

    def write(rows):
        apply_messages = rollups._apply_messages
        rollups._apply_messages = lambda cur, by_ref, delta: rollups._update_messages(cur, sorted(by_ref), by_ref, delta)
        try:
            return writer.archive(conn, rows)
        finally:
            rollups._apply_messages = apply_messages
    return write


@variant("nothing", "decode only: no database work (the writer's decoding CPU)")
def _nothing(conn, writer):
    return lambda rows: rows


def run(url: str, name: str, batches: list[list[Entry]], profile: bool, pg_pid: int) -> dict:
    doc, setup = VARIANTS[name]
    with psycopg.connect(url, autocommit=True) as conn:
        migrate(conn)
        writer = Writer()
        write = setup(conn, writer)
        backend = conn.info.backend_pid
        # Warm up: the first batch creates the temporary table and reads the partitions.
        write([row for _, row in rows_by_entry(batches[0])])
        conn.execute("CHECKPOINT")
        lsn0 = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
        events = 0
        profiler = cProfile.Profile() if profile else None
        pg0, all0, cpu0, wall0 = cpu_seconds(backend), tree_cpu_seconds(pg_pid), time.process_time(), time.perf_counter()
        if profiler:
            profiler.enable()
        for batch in batches[1:]:
            rows = [row for _, row in rows_by_entry(batch)]
            write(rows)
            events += len(rows)
        if profiler:
            profiler.disable()
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        pg, pg_all = cpu_seconds(backend) - pg0, tree_cpu_seconds(pg_pid) - all0
        wal = conn.execute("SELECT pg_current_wal_lsn() - %s::pg_lsn", (lsn0,)).fetchone()[0]
        size = conn.execute("SELECT coalesce(sum(pg_total_relation_size(inhrelid)), 0), "
                            "coalesce(sum(pg_indexes_size(inhrelid)), 0) FROM pg_inherits "
                            "WHERE inhparent = 'events'::regclass").fetchone()
        rows_in = conn.execute("SELECT count(*) FROM events").fetchone()[0]
    if profiler:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    us = 1e6 / max(events, 1)
    return dict(name=name, events=events, wall=wall * us, writer=cpu * us, pg=pg * us, pg_all=pg_all * us,
                wal=float(wal) / max(events, 1), size=float(size[0]) / max(rows_in, 1),
                indexes=float(size[1]) / max(rows_in, 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=40000, help="events per variant")
    parser.add_argument("--batch", type=int, default=1000, help="events per transaction")
    parser.add_argument("--per-entry", type=int, default=32, help="events per backlog entry")
    parser.add_argument("--variants", default="baseline,norollups,noindexes,nothing")
    parser.add_argument("--profile", action="store_true", help="cProfile the writer (of each variant)")
    parser.add_argument("--rounds", type=int, default=1, help="run the variants this many times, interleaved")
    args = parser.parse_args()
    names = args.variants.split(",")
    home = Path(tempfile.mkdtemp(prefix="tspipe-bench-archive-cost-"))
    home.chmod(0o755)
    server = start(home / "data")
    print(f"{args.n:,} events per variant, {args.batch} per transaction; load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} at {datetime.now(timezone.utc):%H:%M} UTC")
    try:
        results: dict[str, list[dict]] = {name: [] for name in names}
        for r in range(args.rounds):
            for i, name in enumerate(names):
                schema = f"v{r}_{i}"
                with psycopg.connect(server.get_uri(), autocommit=True) as conn:
                    conn.execute(f"CREATE SCHEMA {schema}")
                per_batch = max(1, args.batch // args.per_entry)
                all_entries = entries(args.n + args.batch, args.per_entry, start=1 + (r * len(names) + i) * 10**7)
                batches = [all_entries[j:j + per_batch] for j in range(0, len(all_entries), per_batch)]
                results[name].append(run(database_url(server, schema=schema), name, batches, args.profile,
                                         server.get_pid()))
                res = results[name][-1]
                print(f"  round {r + 1} {name}: pg {res['pg']:.1f} us/event writer {res['writer']:.1f}", flush=True)
        print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; medians over {args.rounds} round(s), "
              "CPU in us per event")
        print(f"{'variant':<22} {'writer':>7} {'pg backend':>10} {'pg all':>7} {'wall':>7} {'WAL B':>6} "
              f"{'bytes':>6} {'index B':>7}")
        for name in names:
            runs = results[name]

            def med(key: str) -> float:
                values = sorted(r[key] for r in runs)
                return values[len(values) // 2]
            print(f"{name:<22} {med('writer'):7.1f} {med('pg'):10.1f} {med('pg_all'):7.1f} {med('wall'):7.1f} "
                  f"{med('wal'):6.0f} {med('size'):6.0f} {med('indexes'):7.0f}   {VARIANTS[name][0]}")
    finally:
        server.cleanup()
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
