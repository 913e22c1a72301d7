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


def test_a_batch_that_failed_every_worker_is_quarantined_then_replayed(redis_url, monkeypatch):
    """Issue 12 left ts:journal:stuck unbounded and unreadable. A batch the journal gives up on now has its
    callbacks quarantined (bounded in bytes, listed with the reason); `tspipe quarantine replay` queues them
    again, journalled, for a real worker: the good ones are applied, a bad one comes back to the quarantine."""
    from celery.contrib.testing.worker import start_worker

    from ingest.task_message import ingest_batch_message
    from pipeline.record import Record, encode_batch
    from store import keys, message
    from tests.conftest import fixture_bodies
    from workers import tasks
    from workers.app import get_app

    monkeypatch.setenv("REDIS_URL", redis_url)
    reset_settings_cache()
    tasks.reset_store()
    app = get_app()  # built now, on this test's REDIS_URL
    client = redis.Redis.from_url(redis_url)
    good = fixture_bodies()["delivery_rcs_fallback_to_sms"]
    records = [Record(good, time.time(), None, "req-1"), Record(b"{not json", time.time(), None, "req-2")]
    client.lpush(keys.JOURNAL_STUCK, ingest_batch_message(encode_batch(records), "tspipe.ingest", "t-stuck"))
    client.lpush(keys.JOURNAL_STUCK, b"garbage that is no queue message")

    assert tasks.quarantine_stuck(Store(client)) == 3
    assert client.llen(keys.JOURNAL_STUCK) == 0
    runner = CliRunner()
    listed = runner.invoke(cli, ["quarantine", "list"]).output
    assert listed.count("failed every worker") == 2 and "unreadable queue message" in listed

    out = runner.invoke(cli, ["quarantine", "replay"])
    assert out.exit_code == 2 and "--all" in out.output
    out = runner.invoke(cli, ["quarantine", "replay", "nope"])
    assert out.exit_code == 1 and "no quarantined body with id 'nope'" in out.output
    out = runner.invoke(cli, ["quarantine", "replay", "--all"])
    assert out.exit_code == 0 and "queued 3 quarantined bodies again" in out.output, out.output
    assert client.hlen(keys.JOURNAL) == 1 and client.llen(keys.QUARANTINE) == 0
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        deadline = time.monotonic() + 20
        while (client.hlen(keys.JOURNAL) or client.llen(keys.QUARANTINE) < 2) and time.monotonic() < deadline:
            time.sleep(0.05)
    assert client.hlen(keys.JOURNAL) == 0, "the replayed batch was applied and forgotten"
    assert message.count(client) == 1
    reasons = [e.reason for e in Store(client).quarantined()]
    assert len(reasons) == 2 and not any("failed every worker" in r for r in reasons)
    tasks.reset_store()
    client.close()
