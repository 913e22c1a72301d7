"""Phone-number search over a large archive: GET /v1/events' query on N archived events (default 10 million).

Builds the archive in its own embedded PostgreSQL (pgserver, data in a temp
folder removed afterwards) with COPY-free SQL: generate_series fills 90 day
partitions through the real schema (migrations, indexes), then runs the
search that GET /v1/events?phone_number=... runs, for phone numbers with
few and with many events, and pages deep with the cursor. Prints the
median and p99 of each (ms), the table and index sizes, and the plan.

    .venv/bin/python bench/search.py            # 10,000,000 events (~10-20 min on 2 busy cores)
    .venv/bin/python bench/search.py --events 1000000
    .venv/bin/python bench/search.py --data /tmp/search-10m   # keep the filled archive; a second run reuses it

Each search is timed three ways on the same data, interleaved: as the web process runs it (psycopg's
default: a server-side prepared statement from the 6th execution on, PostgreSQL then choosing
custom or generic plans), planned afresh every time (prepare=False), and as a prepared statement
with a generic plan (search.prepared(), what GET /v1/events and the CLI use): planning a query
over 91 day partitions costs more than running it, and a generic plan prunes partitions at run time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from archive import partitions, search  # noqa: E402
from archive.embedded import database_url, start  # noqa: E402
from archive.migrate import migrate  # noqa: E402

PHONES = 1_000_000  # distinct subscribers: 10 events each on average at 10M events
DAYS = 90


def fill(conn: psycopg.Connection, events: int, chunk: int = 1_000_000) -> float:
    """Archive `events` synthetic events over DAYS days; returns seconds taken."""
    started = time.perf_counter()
    for low in range(0, events, chunk):
        high = min(events, low + chunk)
        span = DAYS * 86400 - 3600
        conn.execute(
            f"""
            INSERT INTO events (occurred_at, event_id, received_at, request_id, kind, channel, outcome, status_code,
                                reference_id, phone_number, event, raw)
            SELECT ts, md5(n::text), ts + interval '2 seconds', 'bench', 'delivery', 'sms',
                   CASE WHEN n % 10 = 0 THEN 'pending' ELSE 'delivered' END, CASE WHEN n % 10 = 0 THEN 290 ELSE 200 END,
                   upper(md5((n / 3)::text)),
                   -- one subscriber in a thousand is busy (a hundred times more events than the others)
                   (15550000000 + CASE WHEN n % 100 = 0 THEN n % 1000 ELSE abs(hashtext(n::text)) % {PHONES} + 1000 END)::text,
                   json_build_object('event_id', md5(n::text), 'kind', 'delivery', 'channel', 'sms',
                                      'status', json_build_object('code', 200, 'outcome', 'delivered')),
                   convert_to('{{"reference_id":"' || upper(md5((n / 3)::text)) || '","status":{{"code":200}}}}', 'UTF8')
            FROM (SELECT n, now() - (n::bigint * {span} / {events}) * interval '1 second' AS ts
                  FROM generate_series({low}, {high - 1}) AS n) AS g
            """
        )
        print(f"  {high:,} events archived ({time.perf_counter() - started:.0f} s)", flush=True)
    conn.execute("ANALYZE events")
    return time.perf_counter() - started


MODES = {
    # name: (how the statement is sent, the session's plan_cache_mode)
    "as the web runs it": (None, "auto"),
    "planned every time": (False, "auto"),
    "prepared, generic plan (search.fetch)": (True, "auto"),
}


def timed(conn: psycopg.Connection, params: dict[str, str], runs: int, prepare: bool | None = None
          ) -> tuple[list[float], bytes]:
    times = []
    body = b""
    for _ in range(runs):
        query = search.parse_query(params)
        statement, args = search.build(query)
        t0 = time.perf_counter()
        if prepare:  # what GET /v1/events and the CLI run
            rows = search.fetch(conn, statement, args)
        else:
            rows = conn.execute(statement, args, prepare=prepare).fetchall()
        body = search.page(rows, query)
        times.append((time.perf_counter() - t0) * 1000)
    return times, body


def describe(name: str, times: list[float]) -> str:
    times = sorted(times)
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
    return f"{name}: median {statistics.median(times):.2f} ms, p99 {p99:.2f} ms ({len(times)} runs)"


def follow(conn: psycopg.Connection, phone: str, prepare: bool | None, pages_max: int = 20) -> tuple[list[float], int]:
    """Deep paging: follow next_cursor through a busy subscriber's events."""
    import msgspec

    cursor, pages, page_times = None, 0, []
    while pages < pages_max:
        params = {"phone_number": phone, "limit": "100"}
        if cursor:
            params["cursor"] = cursor
        t, body = timed(conn, params, 1, prepare)
        page_times += t
        cursor = msgspec.json.decode(body)["next_cursor"]
        pages += 1
        if not cursor:
            break
    return page_times, pages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--data", type=Path, default=None,
                        help="keep the archive in this folder (reused when it already holds --events events)")
    args = parser.parse_args()
    home = args.data or Path(tempfile.mkdtemp(prefix="tspipe-bench-search-"))
    home.mkdir(parents=True, exist_ok=True)
    home.chmod(0o755)
    server = start(home / "data", cleanup="stop")
    try:
        url = database_url(server)
        with psycopg.connect(url, autocommit=True) as conn:
            started = time.perf_counter()
            applied = migrate(conn)
            if applied and args.data:
                print(f"migrated the kept archive ({', '.join(applied)}) in {time.perf_counter() - started:.0f} s",
                      flush=True)
            have = conn.execute("SELECT count(*) FROM events").fetchone()[0] if args.data else 0
            if have >= args.events:
                print(f"reusing the {have:,} events archived in {home}", flush=True)
            else:
                conn.execute("TRUNCATE events")
                today = partitions.today()
                partitions.create(conn, [today - timedelta(days=n) for n in range(DAYS + 1)])
                print(f"filling {args.events:,} events over {DAYS} day partitions...", flush=True)
                seconds = fill(conn, args.events)
                print(f"filled in {seconds:.0f} s", flush=True)
            total = [int(v) for v in conn.execute(
                "SELECT sum(pg_total_relation_size(inhrelid)), sum(pg_indexes_size(inhrelid)) FROM pg_inherits "
                "WHERE inhparent = 'events'::regclass").fetchone()]
            events = conn.execute("SELECT count(*) FROM events").fetchone()[0]
            parts = conn.execute("SELECT count(*) FROM pg_inherits WHERE inhparent = 'events'::regclass").fetchone()[0]
            print(f"{events:,} events in {parts} partitions; table + indexes {total[0] / 1e9:.2f} GB "
                  f"({total[0] / events:.0f} bytes per event, indexes {total[1] / events:.0f})")
            quiet = "15550001234"
            busy = "15550000100"
            counts = {p: conn.execute("SELECT count(*) FROM events WHERE phone_number = %s", (p,)).fetchone()[0]
                      for p in (quiet, busy)}
            print(f"events per phone: quiet {counts[quiet]}, busy {counts[busy]}; "
                  f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        conns = {}
        for name, (_prepare, mode) in MODES.items():
            conns[name] = psycopg.connect(url, autocommit=True)
            conns[name].execute(f"SET plan_cache_mode = {mode}")
        results: dict[str, dict[str, list[float]]] = {name: {"quiet": [], "busy": [], "pages": []} for name in MODES}
        pages = 0
        try:
            for name, (prepare, _mode) in MODES.items():  # warm the cache and the prepared statements
                timed(conns[name], {"phone_number": "+" + quiet}, 10, prepare)
                timed(conns[name], {"phone_number": busy, "limit": "100"}, 10, prepare)
            # Interleaved in slices, so each mode sees the same machine load.
            for _ in range(max(1, args.runs // 20)):
                for name, (prepare, _mode) in MODES.items():
                    results[name]["quiet"] += timed(conns[name], {"phone_number": "+" + quiet}, 20, prepare)[0]
                    results[name]["busy"] += timed(conns[name], {"phone_number": busy, "limit": "100"}, 20, prepare)[0]
            for _ in range(3):
                for name, (prepare, _mode) in MODES.items():
                    page_times, pages = follow(conns[name], busy, prepare)
                    results[name]["pages"] += page_times
            for name in MODES:
                print(f"{name}:")
                print("  " + describe(f"phone search, {counts[quiet]} matches (first page)", results[name]["quiet"]))
                print("  " + describe(f"phone search, {counts[busy]} matches (first page of 100)", results[name]["busy"]))
                print("  " + describe(f"phone search, following next_cursor ({pages} pages, 3 times)",
                                      results[name]["pages"]))
            statement, qargs = search.build(search.parse_query({"phone_number": quiet}))
            for name in ("planned every time", "prepared, generic plan (search.fetch)"):
                conn = conns[name]
                if MODES[name][0]:
                    conn.execute("SET plan_cache_mode = force_generic_plan")
                    text = statement.as_string(conn).replace("%s", "$%d") % tuple(range(1, len(qargs) + 1))
                    conn.execute(f"PREPARE bench_plan (text, bigint) AS {text}")
                    plan = conn.execute(sql.SQL("EXPLAIN (ANALYZE, BUFFERS) EXECUTE bench_plan ({})").format(
                        sql.SQL(", ").join(map(sql.Literal, qargs)))).fetchall()
                else:
                    plan = conn.execute(b"EXPLAIN (ANALYZE, BUFFERS) " + statement.as_bytes(conn), qargs).fetchall()
                lines = [r[0] for r in plan]
                print(f"plan, {name} (first lines):\n  " + "\n  ".join(lines[:6]) + "\n  ...\n  "
                      + "\n  ".join(lines[-4:]))
            for name in MODES:
                median = statistics.median(results[name]["quiet"])
                print(f"goal <= 50 ms ({name}): {'met' if median <= 50 else 'MISSED'} at the median")
            print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        finally:
            for conn in conns.values():
                conn.close()
    finally:
        server.cleanup()
        if args.data is None:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
