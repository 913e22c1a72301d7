"""`tspipe events search` against a real archive: JSON lines newest first, bad input in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from archive.writer import Writer
from tests.archive.support import connect, delivery_body, now_minus, row_of


def tspipe(*args: str, database_url: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    if database_url:
        env["DATABASE_URL"] = database_url
    return subprocess.run([sys.executable, "-m", "tspipe", *args], env=env, capture_output=True, text=True, timeout=60)


def test_search_prints_json_lines_newest_first(database_url):
    conn = connect(database_url)
    Writer().archive(conn, [row_of(delivery_body(f"CLI{i}", "11234567890", now_minus(minutes=10 - i))) for i in range(5)])
    result = tspipe("events", "search", "--phone-number", "+1 123 456 7890", "--limit", "3", database_url=database_url)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [e["reference_id"] for e in lines] == ["CLI4", "CLI3", "CLI2"]
    assert "next_cursor:" in result.stderr
    everything = tspipe("events", "search", "--phone-number", "11234567890", "--all", "--raw", database_url=database_url)
    assert len(everything.stdout.splitlines()) == 5 and "raw" in json.loads(everything.stdout.splitlines()[0])


def test_bad_input_is_one_line(database_url):
    result = tspipe("events", "search", "--kind", "fax", database_url=database_url)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "kind must be one of" in result.stderr
    assert "Traceback" not in result.stderr
    off = tspipe("events", "search", "--phone-number", "1", database_url=None)
    assert off.returncode == 2 and "DATABASE_URL" in off.stderr


def test_archive_writer_without_database_url_says_so_once_and_idles(redis_url):
    """Under a Procfile with DATABASE_URL unset: one line, then idle until stopped (exiting would stop the others)."""
    import signal
    import time

    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["REDIS_URL"] = redis_url
    proc = subprocess.Popen([sys.executable, "-m", "tspipe", "archive"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stderr.readline()  # written once the signal handlers are in place
        assert "the archive is off (DATABASE_URL is not set)" in first, first
        time.sleep(1)
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0
    assert "the archive is off" not in err, err
