"""What the rollups add to the archive writer: the same batches archived with and without them, same run.

Writes N SMS delivery reports (two per message: 203 then a final, with mcc/mnc, price and parts) in
batches of --batch through archive/writer.py, once with `Writer.archive` (events + rollups, one
transaction) and once with only `Writer.write` (events alone), each into a fresh schema, and prints
per event: wall time, the writer's CPU (this process), the PostgreSQL backend's CPU (read from
/proc for the connection's server process) and WAL bytes, for both, and what the rollups add.
--rounds repeats the pair, interleaved, and prints medians: the machine is shared, so one run's
figures are noisy and the same-run difference is what to read.

    python bench/rollup_write.py [-n 40000] [--batch 500] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from archive.embedded import database_url, start  # noqa: E402
from archive.migrate import migrate  # noqa: E402
from archive.writer import Writer  # noqa: E402
from tests.archive.insight_support import CARRIERS, sms_report  # noqa: E402
from tests.archive.support import row_of  # noqa: E402

from proc_cpu import cpu_seconds  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")




def rows(n: int, seed: int):
    t0 = datetime.now(timezone.utc) - timedelta(hours=2)
    carriers = list(CARRIERS)
    out = []
    for i in range(n // 2):
        ref = f"{seed:04d}{i:028X}"
        carrier = carriers[i % len(carriers)]
        when = t0 + timedelta(seconds=i * 0.01)
        out.append(row_of(sms_report(ref, 203, when, carrier), channel="sms"))
        out.append(row_of(sms_report(ref, 200 if i % 10 else 220, when + timedelta(seconds=4), carrier,
                                     price="0.0075", parts=1 + i % 2), channel="sms"))
    return out


def run(url: str, batch_rows, with_rollups: bool) -> dict[str, float]:
    with psycopg.connect(url, autocommit=True) as conn:
        migrate(conn)
        writer = Writer()
        backend = conn.info.backend_pid
        lsn = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
        pg, wall, cpu = cpu_seconds(backend), time.perf_counter(), time.process_time()
        for batch in batch_rows:
            if with_rollups:
                writer.archive(conn, batch)
            else:
                with conn.transaction(), conn.cursor() as cur:
                    writer.write(cur, batch)
        wall, cpu, pg = time.perf_counter() - wall, time.process_time() - cpu, cpu_seconds(backend) - pg
        wal = float(conn.execute("SELECT pg_current_wal_lsn() - %s::pg_lsn", (lsn,)).fetchone()[0])
    return {"wall": wall, "writer": cpu, "pg": pg, "wal": wal}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=40000, help="events per run")
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=1, help="pairs of runs, interleaved; medians are printed")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="tspipe-bench-rollup-"))
    home.chmod(0o755)
    server = start(home / "data")
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    try:
        results: dict[str, list[dict[str, float]]] = {"events only": [], "events + rollups": []}
        seed = 0
        for _ in range(args.rounds):
            for label, with_rollups in (("events only", False), ("events + rollups", True)):
                schema = f"bench_{seed}"
                with psycopg.connect(server.get_uri(), autocommit=True) as conn:
                    conn.execute(f"CREATE SCHEMA {schema}")
                data = rows(args.n, seed)
                seed += 1
                batches = [data[i:i + args.batch] for i in range(0, len(data), args.batch)]
                r = run(database_url(server, schema=schema), batches, with_rollups)
                r = {k: v / len(data) * (1 if k == "wal" else 1e6) for k, v in r.items()}
                results[label].append(r)
                print(f"{label:<18} {len(data):,} events: {r['wall']:7.1f} us/event wall, {r['writer']:6.1f} writer CPU, "
                      f"{r['pg']:6.1f} PostgreSQL backend CPU, {r['wal']:6.0f} WAL bytes", flush=True)
        med = {label: {k: statistics.median(r[k] for r in runs) for k in runs[0]} for label, runs in results.items()}
        base, full = med["events only"], med["events + rollups"]
        print(f"medians of {args.rounds} round(s); load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        for label, r in med.items():
            print(f"{label:<18} {r['wall']:7.1f} us/event wall, {r['writer']:6.1f} writer CPU, "
                  f"{r['pg']:6.1f} PostgreSQL backend CPU, {r['wal']:6.0f} WAL bytes")
        print("rollups add " + ", ".join(
            f"{full[k] - base[k]:.1f} {unit} ({full[k] / base[k]:.2f}x)" for k, unit in (
                ("wall", "us/event wall"), ("writer", "us writer CPU"), ("pg", "us PostgreSQL CPU"),
                ("wal", "WAL bytes"))))
    finally:
        server.cleanup()
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
