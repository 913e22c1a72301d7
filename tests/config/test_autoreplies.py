"""TSPIPE_AUTOREPLIES is parsed under every process: a bad value names the variable."""

from __future__ import annotations

import pytest

from config import ConfigError
from config.autoreplies import load_autoreplies


def test_unset_means_no_replies():
    assert load_autoreplies(None) == {} and load_autoreplies("") == {}


def test_json_or_a_file(tmp_path):
    text = '{"stop": {"default": "Bye", "US": "Bye (US)"}}'
    path = tmp_path / "replies.json"
    path.write_text(text)
    assert load_autoreplies(text) == load_autoreplies(str(path)) == {"stop": {"default": "Bye", "US": "Bye (US)"}}


@pytest.mark.parametrize("raw, fragment", [
    ("/no/such/file.json", "is neither JSON nor an existing file"),
    ('{"stop": "Bye"}', "must map action -> {language: text}"),
])
def test_bad_config_names_the_variable(raw, fragment):
    with pytest.raises(ConfigError, match="TSPIPE_AUTOREPLIES") as caught:
        load_autoreplies(raw)
    assert fragment in str(caught.value)
