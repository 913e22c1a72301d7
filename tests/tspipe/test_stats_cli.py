"""`tspipe stats` as a user runs it: a real subprocess against a real PostgreSQL."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys

from tests.ingest.test_stats_api import fill


def run(*args, env=None):
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("TSPIPE_", "DATABASE_URL"))}
    environ.update(env or {})
    return subprocess.run([sys.executable, "-m", "tspipe", "stats", *args], capture_output=True, timeout=60,
                          env=environ, text=True)


def test_table_by_carrier(database_url):
    fill(database_url)
    result = run("--by", "carrier", "--since", "24h", env={"DATABASE_URL": database_url})
    assert result.returncode == 0, result.stderr
    print(result.stdout)
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["key", "sent", "final"]
    rows = {line.split("  ")[0].strip(): line for line in lines[1:]}
    assert set(rows) == {"Verizon (310-004)", "T-Mobile (310-260)", "Telekom (262-01)", "Vodafone UK (234-15)"}
    failing = next(line for line in lines if "310-260" in line)
    assert "0.0%" in failing and "220 Gateway/network cannot route message (5)" in failing
    assert "100.0%" in next(line for line in lines if "310-004" in line)

    as_csv = run("--by", "carrier", "--since", "24h", "--csv", env={"DATABASE_URL": database_url})
    assert as_csv.returncode == 0
    assert {r["key"] for r in csv.DictReader(io.StringIO(as_csv.stdout))} == {"310-004", "310-260", "262-01", "234-15"}


def test_one_line_errors():
    result = run("--by", "planet")
    assert result.returncode == 2 and "group_by: 'planet' is not one of" in result.stderr
    assert "Traceback" not in result.stderr
    result = run("--by", "carrier")
    assert result.returncode == 2 and "DATABASE_URL is not set" in result.stderr
    result = run(env={"DATABASE_URL": "postgresql://nobody@/none?host=/nonexistent"})
    assert result.returncode == 1 and result.stderr.startswith("tspipe stats: the archive cannot answer")
    assert "Traceback" not in result.stderr
