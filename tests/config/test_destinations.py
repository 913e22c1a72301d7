"""TSPIPE_DESTINATIONS parsing: JSON, .json/.toml files, and errors that name the variable."""

from __future__ import annotations

import json

import msgspec
import pytest

from config.errors import ConfigError
from pipeline.event import Action, Kind, Outcome
from tests.workers.delivery_support import make_event
from config.destinations import Filter, parse_destinations

S = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
ONE = [{"name": "crm", "url": "https://crm.example/hook", "secret": S,
        "filter": {"kinds": ["delivery"], "final_only": True}, "batch_size": 10}]


def test_json_list_parses_with_defaults() -> None:
    (dest,) = parse_destinations(json.dumps(ONE))
    assert dest.name == "crm" and dest.batch_size == 10 and dest.max_attempts == 8
    assert dest.queue == "tspipe.dest.crm"
    assert dest.filter.kinds == ["delivery"] and dest.filter.final_only


def test_json_and_toml_files(tmp_path) -> None:
    as_json = tmp_path / "d.json"
    as_json.write_text(json.dumps(ONE))
    as_toml = tmp_path / "d.toml"
    as_toml.write_text('[[destinations]]\nname = "crm"\nurl = "https://crm.example/hook"\nsecret = "' + S + '"\n'
                       '[destinations.filter]\noutcomes = ["failed"]\n')
    assert parse_destinations(str(as_json))[0].name == "crm"
    assert parse_destinations(str(as_toml))[0].filter.outcomes == ["failed"]


@pytest.mark.parametrize("raw, needle", [
    ("[not json", "invalid JSON"),
    ("/nowhere/d.yaml", "neither a JSON list"),
    (json.dumps([{"name": "x", "url": "ftp://x", "secret": S}]), "url must start"),
    (json.dumps([{"name": "x", "url": "http://x", "secret": S, "colour": 1}]), "colour"),
    (json.dumps([{"name": "x", "url": "http://x", "secret": S, "timeout": "slow"}]), "timeout"),
    (json.dumps(ONE + ONE), "duplicate"),
    (json.dumps([{"name": "x", "url": "http://x", "secret": S, "rate_limit": "fast"}]), "rate_limit"),
    (json.dumps([{"name": "bad name", "url": "http://x", "secret": S}]), "name"),
])
def test_bad_config_names_the_variable(raw: str, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_destinations(raw)
    assert info.value.variable == "TSPIPE_DESTINATIONS"
    assert needle in str(info.value)


@pytest.mark.parametrize("secret", ["my-plain-secret", "c2VjcmV0MTIz", "whsec_c2VjcmV0MTIz", "whsec_not base64!", ""])
def test_secret_not_in_standard_webhooks_form_stops_start_up_naming_the_destination(secret: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_destinations(json.dumps([{"name": "crm", "url": "http://x", "secret": secret}]))
    message = str(info.value)
    assert message.startswith("TSPIPE_DESTINATIONS: destination 0 ('crm'): secret") and "\n" not in message
    assert "tspipe destinations new-secret" in message


def test_filter_matches_every_dimension() -> None:
    stop = make_event(1, kind=Kind.INBOUND, outcome=Outcome.RECEIVED, action=Action.STOP)
    pending = make_event(2, outcome=Outcome.PENDING, final=False)
    assert Filter(actions=["stop"]).matches(stop) and not Filter(actions=["stop"]).matches(pending)
    assert Filter(final_only=True).matches(stop) and not Filter(final_only=True).matches(pending)
    assert Filter(outcomes=["pending"], channels=["sms"]).matches(pending)
    assert not Filter(channels=["whatsapp"]).matches(pending)
    assert Filter().matches(stop)


def test_filter_keywords_case_folded_exact_match() -> None:
    join = msgspec.structs.replace(make_event(1, kind=Kind.INBOUND, outcome=Outcome.RECEIVED, action=Action.GENERIC),
                                   keyword="join")
    wants = parse_destinations(json.dumps([{"name": "j", "url": "http://x", "secret": S, "filter": {"keywords": ["JOIN"]}}]))[0]
    assert wants.filter.keywords == ["join"] and wants.filter.matches(join)
    assert not wants.filter.matches(msgspec.structs.replace(join, keyword="joint"))
    assert not wants.filter.matches(msgspec.structs.replace(join, keyword=None))
    assert Filter(keywords=["Stop"], actions=["stop"]).matches(make_event(2, kind=Kind.INBOUND, action=Action.STOP))
