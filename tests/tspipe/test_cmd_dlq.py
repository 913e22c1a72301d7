"""`tspipe dlq list / replay / purge` against a real Redis."""

from __future__ import annotations

import json

import redis
from aiohttp import web
from click.testing import CliRunner

from tests.workers.delivery_support import HttpServer, celery_worker, destinations_env, make_event, wait_for
from tspipe.cli import cli
from store import deadletters
from pipeline.event import EVENT_ENCODER


async def ok(request: web.Request) -> web.Response:
    return web.Response(status=200)


def test_list_replay_purge(monkeypatch, redis_url) -> None:
    client = redis.Redis.from_url(redis_url)
    runner = CliRunner()
    with HttpServer(ok) as server:
        destinations_env(monkeypatch, redis_url, [{"name": "a", "url": server.url, "secret": "s"}])
        for n, target in ((1, "a"), (2, "a"), (3, "gone")):
            deadletters.add(client, deadletters.new_entry("destination", target, EVENT_ENCODER.encode(make_event(n)),
                                                          "HTTP 503", 8))
        listed = runner.invoke(cli, ["dlq", "list", "--destination", "a", "--json"])
        assert listed.exit_code == 0
        entries = [json.loads(line) for line in listed.output.splitlines()]
        assert len(entries) == 2 and entries[0]["event"]["event_id"] == "evt_0001"
        assert runner.invoke(cli, ["dlq", "replay"]).exit_code == 2  # says which entries
        with celery_worker():
            replayed = runner.invoke(cli, ["dlq", "replay", "--id", entries[0]["id"]])
            assert replayed.exit_code == 0, replayed.output
            assert wait_for(lambda: len(server.calls) == 1)
        assert server.calls[0][0]["webhook-id"] == "evt_0001"
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


def test_dlq_list_says_so_when_empty(monkeypatch, redis_url) -> None:
    from config.settings import reset_settings_cache

    monkeypatch.setenv("REDIS_URL", redis_url)
    reset_settings_cache()
    result = CliRunner().invoke(cli, ["dlq", "list"])
    assert result.exit_code == 0 and result.output.strip() == "no dead letters"
    assert CliRunner().invoke(cli, ["dlq", "list", "--destination", "a"]).output.strip() == "no dead letters for a"
    assert CliRunner().invoke(cli, ["dlq", "list", "--json"]).output == ""  # JSON lines: nothing to parse
