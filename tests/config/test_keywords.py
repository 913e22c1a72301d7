"""TSPIPE_KEYWORDS: a preset, JSON, or a .json/.toml file; every bad value is one line naming the variable."""

from __future__ import annotations

import pytest

from config import ConfigError, load_settings
from config.keywords import keyword_map
from pipeline.event import Action
from pipeline.keywords import DEFAULT_MAP


def test_unset_is_the_telesign_preset():
    assert keyword_map(load_settings({}).keywords) is DEFAULT_MAP


def test_preset_name_json_and_files(tmp_path):
    assert keyword_map("ctia").detect("UNSTOP") == (Action.START, "unstop")
    assert keyword_map('{"keywords": {"JOIN": "generic"}}').detect("Join") == (Action.GENERIC, "join")
    toml = tmp_path / "keywords.toml"
    toml.write_text('preset = "ctia"\n[keywords]\nJOIN = "generic"\n[channels.whatsapp]\nPARAR = "stop"\n')
    from_toml = keyword_map(load_settings({"TSPIPE_KEYWORDS": str(toml)}).keywords)
    assert from_toml.detect("stopall") == (Action.STOP, "stopall")
    assert from_toml.detect("parar", channel="whatsapp") == (Action.STOP, "parar")
    as_json = tmp_path / "keywords.json"
    as_json.write_text('{"preset": "telesign", "languages": {"FR": {"stoppe": "stop"}}}')
    assert keyword_map(str(as_json)).detect("stoppe", country="fr") == (Action.STOP, "stoppe")


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ('{"keywords": {"yes": "start", "yes": "stop"}}', "keyword 'yes' is mapped to two actions: start and stop"),
        ('{"keywords": ', "invalid JSON"),
        ("/no/such/keywords.toml", "neither a preset"),
    ],
)
def test_bad_values_name_the_variable(raw, fragment):
    with pytest.raises(ConfigError) as info:
        load_settings({"TSPIPE_KEYWORDS": raw})
    assert str(info.value).startswith("TSPIPE_KEYWORDS: ") and fragment in str(info.value)


def test_toml_duplicate_key_is_refused(tmp_path):
    toml = tmp_path / "k.toml"
    toml.write_text('[keywords]\nyes = "start"\nyes = "stop"\n')
    with pytest.raises(ConfigError, match="TSPIPE_KEYWORDS: .*k.toml"):
        load_settings({"TSPIPE_KEYWORDS": str(toml)})
