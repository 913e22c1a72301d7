"""`tspipe quarantine` against a real Redis: list, show, purge, and clear errors."""

from __future__ import annotations

import time

import redis
from click.testing import CliRunner

from config.settings import reset_settings_cache
from tspipe.cli import cli
from store.quarantine import QuarantineEntry
from store.state import Store


def test_list_show_purge(redis_url, monkeypatch):
    monkeypatch.setenv("REDIS_URL", redis_url)
    reset_settings_cache()
    Store(redis.Redis.from_url(redis_url)).quarantine(
        [QuarantineEntry(id="abc", reason="not JSON", received_at=time.time(), quarantined_at=time.time(), body="{x")]
    )
    runner = CliRunner()
    out = runner.invoke(cli, ["quarantine", "list"])
    assert out.exit_code == 0 and "abc" in out.output and "not JSON" in out.output
    out = runner.invoke(cli, ["quarantine", "show", "abc"])
    assert out.exit_code == 0 and "{x" in out.output
    out = runner.invoke(cli, ["quarantine", "show", "nope"])
    assert out.exit_code == 1 and "no quarantined body" in out.output and "Traceback" not in out.output
    out = runner.invoke(cli, ["quarantine", "purge", "--yes"])
    assert out.exit_code == 0 and "purged 1" in out.output
    assert "empty" in runner.invoke(cli, ["quarantine", "list"]).output


def test_unreachable_redis_is_one_line(monkeypatch):
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    reset_settings_cache()
    out = CliRunner().invoke(cli, ["quarantine", "list"])
    assert out.exit_code == 1 and "cannot reach Redis" in out.output
    assert out.exception is None or isinstance(out.exception, SystemExit)
