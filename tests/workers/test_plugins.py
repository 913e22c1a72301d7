"""Plug-ins: a real entry point installed with pip, dotted paths, filters, dead letters."""

from __future__ import annotations

import csv

import pytest
import redis

from pipeline.event import Action, Kind, Outcome
from tests.workers.conftest import pip_installed
from tests.workers.delivery_support import celery_worker, destinations_env, make_event, wait_for
from store import deadletters
from workers.fanout import fan_out
from workers.plugins import load_plugins, to_event

@pytest.fixture(scope="module")
def installed_example(tmp_path_factory):
    with pip_installed("tspipe-optout-csv", "tspipe-optout-csv", tmp_path_factory.mktemp("example")):
        yield


def test_entry_point_plugin_gets_only_filtered_events(installed_example, monkeypatch, redis_url, tmp_path) -> None:
    out = tmp_path / "optouts.csv"
    destinations_env(monkeypatch, redis_url, [], TSPIPE_OPTOUT_CSV=str(out))
    plugins = {p.name: p for p in load_plugins(refresh=True)}
    assert "tspipe_optout_csv.record_optout" in plugins
    assert plugins["tspipe_optout_csv.record_optout"].filter.actions == ["stop"]
    stop = make_event(1, kind=Kind.INBOUND, outcome=Outcome.RECEIVED, action=Action.STOP)
    events = [stop, make_event(2, kind=Kind.INBOUND, outcome=Outcome.RECEIVED, action=Action.HELP), make_event(3)]
    with celery_worker():
        fan_out(events)
        assert wait_for(lambda: out.exists() and out.read_text().count("\n") >= 1)
        import time

        time.sleep(0.3)  # an unwanted second row would show up by now
    rows = list(csv.reader(out.open()))
    assert rows == [["evt_0001", "sms", stop.phone_number, "STOP", rows[0][4]]]


def test_failing_plugin_is_dead_lettered_after_its_retries(monkeypatch, redis_url) -> None:
    destinations_env(monkeypatch, redis_url, [], TSPIPE_PLUGINS="tests.workers.failing_plugin:explode")
    load_plugins(refresh=True)
    client = redis.Redis.from_url(redis_url)
    with celery_worker():
        fan_out([make_event(1, outcome=Outcome.FAILED), make_event(2, outcome=Outcome.FAILED), make_event(3)])
        assert wait_for(lambda: len(deadletters.list_entries(client)) == 1)
    (entry,) = deadletters.list_entries(client)
    assert entry.kind == "plugin" and entry.target == "tests.failing_plugin" and entry.attempts == 2
    assert "RuntimeError" in entry.error
    assert [to_event(e).event_id for e in __import__("json").loads(bytes(entry.event))] == ["evt_0001", "evt_0002"]
