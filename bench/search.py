"""Phone-number search over a large archive: GET /v1/events' query on N archived events (default 10 million).

Builds the archive in its own embedded PostgreSQL (pgserver, data in a temp
folder removed afterwards) with COPY-free SQL: generate_series fills 90 day
partitions through the real schema (migrations, indexes), then runs the
search that GET /v1/events?phone_number=... runs, for phone numbers with
few and with many events, and pages deep with the cursor. Prints the
median and p99 of each (ms), the table and index sizes, and the plan.

    .venv/bin/python bench/search.py            # 10,000,000 events (~10-20 min on 2 busy cores)
    .venv/bin/python bench/search.py --events 1000000
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import psycopg

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
                   jsonb_build_object('event_id', md5(n::text), 'kind', 'delivery', 'channel', 'sms',
                                      'status', jsonb_build_object('code', 200, 'outcome', 'delivered')),
                   convert_to('{{"reference_id":"' || upper(md5((n / 3)::text)) || '","status":{{"code":200}}}}', 'UTF8')
            FROM (SELECT n, now() - (n::bigint * {span} / {events}) * interval '1 second' AS ts
                  FROM generate_series({low}, {high - 1}) AS n) AS g
            """
        )
        print(f"  {high:,} events archived ({time.perf_counter() - started:.0f} s)", flush=True)
    conn.execute("ANALYZE events")
    return time.perf_counter() - started


def timed(conn: psycopg.Connection, params: dict[str, str], runs: int) -> tuple[list[float], bytes]:
    times = []
    body = b""
    for _ in range(runs):
        query = search.parse_query(params)
        statement, args = search.build(query)
        t0 = time.perf_counter()
        rows = conn.execute(statement, args).fetchall()
        body = search.page(rows, query)
        times.append((time.perf_counter() - t0) * 1000)
    return times, body


def describe(name: str, times: list[float]) -> str:
    times = sorted(times)
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
    return f"{name}: median {statistics.median(times):.2f} ms, p99 {p99:.2f} ms ({len(times)} runs)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="tspipe-bench-search-"))
    home.chmod(0o755)
    server = start(home / "data")
    try:
        with psycopg.connect(database_url(server), autocommit=True) as conn:
            migrate(conn)
            today = partitions.today()
            partitions.create(conn, [today - timedelta(days=n) for n in range(DAYS + 1)])
            print(f"filling {args.events:,} events over {DAYS} day partitions...", flush=True)
            seconds = fill(conn, args.events)
            size = conn.execute("SELECT pg_total_relation_size(c.oid) FROM pg_class c WHERE relname = 'events'").fetchone()
            total = [int(v) for v in conn.execute(
                "SELECT sum(pg_total_relation_size(inhrelid)), sum(pg_indexes_size(inhrelid)) FROM pg_inherits "
                "WHERE inhparent = 'events'::regclass").fetchone()]
            print(f"filled in {seconds:.0f} s; table + indexes {total[0] / 1e9:.2f} GB "
                  f"({total[0] / args.events:.0f} bytes per event, indexes {total[1] / args.events:.0f}){size and ''}")
            quiet = "15550001234"
            busy = "15550000100"
            counts = {p: conn.execute("SELECT count(*) FROM events WHERE phone_number = %s", (p,)).fetchone()[0]
                      for p in (quiet, busy)}
            print(f"events per phone: quiet {counts[quiet]}, busy {counts[busy]}")
            timed(conn, {"phone_number": "+" + quiet}, 5)  # warm the cache
            quiet_times, _ = timed(conn, {"phone_number": "+" + quiet}, args.runs)
            busy_times, body = timed(conn, {"phone_number": busy, "limit": "100"}, args.runs)
            print(describe(f"phone search, {counts[quiet]} matches (first page)", quiet_times))
            print(describe(f"phone search, {counts[busy]} matches (first page of 100)", busy_times))
            # Deep paging: follow next_cursor through the busy subscriber's events.
            import msgspec

            cursor, pages, page_times = None, 0, []
            while pages < 20:
                params = {"phone_number": busy, "limit": "100"}
                if cursor:
                    params["cursor"] = cursor
                t, body = timed(conn, params, 1)
                page_times += t
                cursor = msgspec.json.decode(body)["next_cursor"]
                pages += 1
                if not cursor:
                    break
            print(describe(f"phone search, following next_cursor ({pages} pages)", page_times))
            statement, qargs = search.build(search.parse_query({"phone_number": quiet}))
            plan = conn.execute(b"EXPLAIN (ANALYZE, BUFFERS) " + statement.as_bytes(conn), qargs).fetchall()
            lines = [r[0] for r in plan]
            print("plan (first lines):\n  " + "\n  ".join(lines[:8]) + "\n  ...\n  " + "\n  ".join(lines[-3:]))
            print(f"goal <= 50 ms: {'met' if statistics.median(quiet_times) <= 50 else 'MISSED'}")
    finally:
        server.cleanup()
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
