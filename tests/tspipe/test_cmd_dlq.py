"""`tspipe dlq list / replay / purge` against a real Redis."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from aiohttp import web
from click.testing import CliRunner

from tests.workers.delivery_support import HttpServer, delivery_engine, destinations_env, make_event, verify_all, wait_for
from tests.workers.test_delivery import SECRET
from tspipe.cli import cli
from store import deadletters
from workers import plugins
from workers.fanout import fan_out
from workers.plugins import load_plugins
from pipeline.webhooks import batch_id
from pipeline.event import EVENT_ENCODER
from tests.conftest import REPO_ROOT


@pytest.fixture
def forget_plugins():
    """These tests load a plug-in; later tests must not fan out to it."""
    yield
    plugins._loaded = None


async def ok(request: web.Request) -> web.Response:
    return web.Response(status=200)


def test_list_replay_purge(monkeypatch, redis_url) -> None:
    client = redis.Redis.from_url(redis_url)
    runner = CliRunner()
    with HttpServer(ok) as server:
        destinations_env(monkeypatch, redis_url, [{"name": "a", "url": server.url, "secret": SECRET}])
        for n, target in ((1, "a"), (2, "a"), (3, "gone")):
            deadletters.add(client, deadletters.new_entry("destination", target, EVENT_ENCODER.encode(make_event(n)),
                                                          "HTTP 503", 8))
        listed = runner.invoke(cli, ["dlq", "list", "--destination", "a", "--json"])
        assert listed.exit_code == 0
        entries = [json.loads(line) for line in listed.output.splitlines()]
        assert len(entries) == 2 and entries[0]["event"]["event_id"] == "evt_0001"
        assert runner.invoke(cli, ["dlq", "replay"]).exit_code == 2  # says which entries
        with delivery_engine():
            replayed = runner.invoke(cli, ["dlq", "replay", "--id", entries[0]["id"]])
            assert replayed.exit_code == 0, replayed.output
            assert wait_for(lambda: len(server.calls) == 1)
        assert server.calls[0][0]["webhook-id"] == "evt_0001"
        verify_all(SECRET, server.calls)
        assert len(deadletters.list_entries(client)) == 2
        assert runner.invoke(cli, ["dlq", "purge", "--yes"]).exit_code == 0
        assert deadletters.list_entries(client) == []


def test_entries_in_the_older_autoreply_shape_are_listed_and_removable(redis_url) -> None:
    """The auto-reply task may push {kind, payload, error, attempts}; the dlq still shows and purges it."""
    from store import keys

    client = redis.Redis.from_url(redis_url)
    client.lpush(keys.DEADLETTER, json.dumps({"kind": "autoreply", "payload": {"event_id": "e1", "message": "hi"},
                                              "error": "no Telesign credentials", "attempts": 0}))
    (entry,) = deadletters.list_entries(client, kind="autoreply")
    assert entry.target == "autoreply" and json.loads(bytes(entry.event))["event_id"] == "e1" and len(entry.id) == 32
    assert deadletters.remove(client, [entry.id]) == 1
    assert client.llen(keys.DEADLETTER) == 0


def test_list_shows_event_id_and_webhook_id(monkeypatch, redis_url) -> None:
    client = redis.Redis.from_url(redis_url)
    destinations_env(monkeypatch, redis_url, [])
    batch = b"[" + EVENT_ENCODER.encode(make_event(1)) + b"," + EVENT_ENCODER.encode(make_event(2)) + b"]"
    deadletters.add(client, deadletters.new_entry("destination", "a", EVENT_ENCODER.encode(make_event(7)), "HTTP 503", 8))
    deadletters.add(client, deadletters.new_entry("destination", "b", batch, "HTTP 503", 8))
    lines = CliRunner().invoke(cli, ["dlq", "list"]).output.splitlines()
    assert "event=evt_0007" in lines[0] and "webhook-id=evt_0007" in lines[0]
    assert "event=evt_0001 (+1)" in lines[1] and f"webhook-id={batch_id(['evt_0001', 'evt_0002'])}" in lines[1]
    assert "no dead letters" in CliRunner().invoke(cli, ["dlq", "list", "--destination", "zzz"]).output


def test_replay_without_the_destination_configured_says_why_and_keeps_the_entries(monkeypatch, redis_url) -> None:
    client = redis.Redis.from_url(redis_url)
    destinations_env(monkeypatch, redis_url, [])  # a shell without TSPIPE_DESTINATIONS
    for n in range(3):
        deadletters.add(client, deadletters.new_entry("destination", "crm", EVENT_ENCODER.encode(make_event(n)), "x", 8))
    result = CliRunner().invoke(cli, ["dlq", "replay", "--all"])
    assert result.exit_code == 1
    assert "3 entries for 'crm' kept: destination 'crm' is not in TSPIPE_DESTINATIONS" in result.output
    assert "replayed 0 of 3" in result.output
    assert len(deadletters.list_entries(client)) == 3


def test_replayed_plugin_call_goes_to_the_plugins_own_queue(monkeypatch, redis_url, forget_plugins) -> None:
    """Issue 11.8: replay sent a plug-in call to the default queue, which nothing of the plug-in's consumes."""
    client = redis.Redis.from_url(redis_url)
    destinations_env(monkeypatch, redis_url, [], TSPIPE_PLUGINS="tests.workers.queued_plugin:record")
    load_plugins(refresh=True)
    deadletters.add(client, deadletters.new_entry("plugin", "tests.queued_plugin", EVENT_ENCODER.encode(make_event(1)),
                                                  "RuntimeError", 3))
    result = CliRunner().invoke(cli, ["dlq", "replay", "--all"])
    assert result.exit_code == 0, result.output
    assert client.llen("tests.plugin.queue") == 1 and client.llen("tspipe.ingest") == 0


def test_tspipe_worker_consumes_a_plugins_declared_queue(monkeypatch, redis_url, tmp_path, forget_plugins) -> None:
    """Issue 11.8: `tspipe worker` listened only on the queues of workers/app.py, never on a plug-in's own."""
    out = tmp_path / "plugin.out"
    destinations_env(monkeypatch, redis_url, [], TSPIPE_PLUGINS="tests.workers.queued_plugin:record",
                     QUEUED_PLUGIN_OUT=str(out))
    load_plugins(refresh=True)
    fan_out([make_event(4)])
    assert redis.Redis.from_url(redis_url).llen("tests.plugin.queue") == 1
    env = dict(os.environ, TSPIPE_LOG_LEVEL="warning", PYTHONPATH=REPO_ROOT)
    worker = subprocess.Popen([str(Path(sys.executable).with_name("tspipe")), "worker", "--pool=solo"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_for(lambda: out.exists() and out.read_text() == "evt_0004\n", timeout=20)
    finally:
        worker.terminate()
        worker.wait(10)


def test_dlq_list_says_so_when_empty(monkeypatch, redis_url) -> None:
    from config.settings import reset_settings_cache

    monkeypatch.setenv("REDIS_URL", redis_url)
    reset_settings_cache()
    result = CliRunner().invoke(cli, ["dlq", "list"])
    assert result.exit_code == 0 and result.output.strip() == "no dead letters"
    assert CliRunner().invoke(cli, ["dlq", "list", "--destination", "a"]).output.strip() == "no dead letters for a"
    assert CliRunner().invoke(cli, ["dlq", "list", "--json"]).output == ""  # JSON lines: nothing to parse
