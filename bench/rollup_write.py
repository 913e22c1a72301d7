"""What the rollups add to the archive writer: the same batches archived with and without them, same run.

Writes N SMS delivery reports (two per message: 203 then a final, with mcc/mnc, price and parts) in
batches of --batch through archive/writer.py, once with `Writer.archive` (events + rollups, one
transaction) and once with only `Writer.write` (events alone) into a fresh schema, and prints wall
and client CPU microseconds per event for both, and the ratio. PostgreSQL's own CPU is not included.

    python bench/rollup_write.py [-n 40000] [--batch 500]
"""

from __future__ import annotations

import argparse
import shutil
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


def run(url: str, batch_rows, with_rollups: bool) -> tuple[float, float]:
    with psycopg.connect(url, autocommit=True) as conn:
        migrate(conn)
        writer = Writer()
        wall, cpu = time.perf_counter(), time.process_time()
        for batch in batch_rows:
            if with_rollups:
                writer.archive(conn, batch)
            else:
                with conn.transaction(), conn.cursor() as cur:
                    writer.write(cur, batch)
        return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=40000, help="events per run")
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="tspipe-bench-rollup-"))
    home.chmod(0o755)
    server = start(home / "data")
    try:
        results = {}
        for seed, (label, with_rollups) in enumerate((("events only", False), ("events + rollups", True))):
            schema = f"bench_{seed}"
            with psycopg.connect(server.get_uri(), autocommit=True) as conn:
                conn.execute(f"CREATE SCHEMA {schema}")
            data = rows(args.n, seed)
            batches = [data[i:i + args.batch] for i in range(0, len(data), args.batch)]
            wall, cpu = run(database_url(server, schema=schema), batches, with_rollups)
            results[label] = (wall, cpu)
            print(f"{label:<18} {len(data):,} events: {wall / len(data) * 1e6:7.1f} us/event wall, "
                  f"{cpu / len(data) * 1e6:7.1f} us/event writer CPU")
        (w0, c0), (w1, c1) = results["events only"], results["events + rollups"]
        print(f"rollups add {((w1 - w0) / args.n) * 1e6:.1f} us/event wall ({w1 / w0:.2f}x), "
              f"{((c1 - c0) / args.n) * 1e6:.1f} us/event writer CPU ({c1 / c0:.2f}x)")
    finally:
        server.cleanup()
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
