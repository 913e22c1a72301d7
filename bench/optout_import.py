"""`tspipe optouts import` of a large CSV, end to end, as an operator runs it.

    python bench/optout_import.py [--rows 100000]

Writes a CSV of --rows opt-outs and opt-ins (address, channel, keyword, time;
keywords resolved through the keyword map, one address in ten listed twice),
starts a private redis-server and times the real command in a subprocess:
the first import, then the same file again (idempotent: nothing changes).
Prints wall time, CPU of the command and of Redis, and rows/s; the goal is
100,000 rows in <= 10 s.
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402

from tspipe.redis_server import RedisServer  # noqa: E402


def write_csv(path: Path, rows: int) -> None:
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["address", "channel", "keyword", "time"])
        for n in range(rows):
            address = f"1555{n % (rows - rows // 10):07d}"  # the last tenth repeat earlier addresses
            keyword = "START" if n % 7 == 0 else ("STOPALL" if n % 3 == 0 else "STOP")
            when = (start + timedelta(seconds=n)).isoformat().replace("+00:00", "Z")
            writer.writerow([address, "sms", keyword, when])


def redis_cpu(client: redis.Redis) -> float:
    info = client.info("cpu")
    return info["used_cpu_user"] + info["used_cpu_sys"]


def timed_import(path: Path, env: dict[str, str], client: redis.Redis) -> tuple[float, float, float, str]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    redis_before = redis_cpu(client)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "tspipe", "optouts", "import", str(path)], env=env, cwd=ROOT,
                          capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"import failed: {done.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, redis_cpu(client) - redis_before, done.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "optouts.csv"
        write_csv(path, args.rows)
        server = RedisServer(Path(tmp) / "redis", appendonly=False).start()
        try:
            client = redis.Redis.from_url(server.url)
            env = dict(os.environ, REDIS_URL=server.url, TSPIPE_KEYWORDS="ctia", TSPIPE_DATA_DIR=str(Path(tmp) / "data"))
            for label in ("first import", "same file again"):
                wall, cpu, rcpu, said = timed_import(path, env, client)
                print(f"{label:<16} {args.rows:,} rows: {wall:5.2f} s wall ({args.rows / wall:,.0f} rows/s), "
                      f"command CPU {cpu:.2f} s (interpreter start included), Redis CPU {rcpu:.2f} s")
                print(f"{'':<16} {said.split(': ', 1)[1]}")
            print(f"listed: {client.zcard('ts:optouts'):,}; goal {args.rows:,} rows <= 10 s: "
                  f"{'met' if wall <= 10 else 'NOT met'}")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
