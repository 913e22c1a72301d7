"""The sender's keyword map: presets, scopes, conflicts, and decode using it."""

from __future__ import annotations

import json

import pytest

from pipeline import decode
from pipeline.event import Action
from pipeline.keywords import DEFAULT_MAP, PRESETS, KeywordMapError, detect, parse_keyword_map
from tests.conftest import fixture_bodies


def sms(text: str, country: str = "US") -> bytes:
    return json.dumps({
        "status": {"code": 1500, "description": "Delivered to customer", "updated_on": "2024-01-01T00:00:00Z"},
        "reference_id": "R1", "sub_resource": "mo_sms",
        "user_response": {"sender_id": "4442", "iso_country_code": country, "phone_number": "15550001111",
                          "mo_message": text},
    }).encode()


def test_default_map_is_the_seed_table_and_agrees_with_the_fast_path():
    assert DEFAULT_MAP.words == PRESETS["telesign"]
    for text in ("STOP", " Arrêt! ", "info?", "start", "stopall", "please stop", "", None, "UNSTOP"):
        assert DEFAULT_MAP.detect(text) == detect(text)


def test_ctia_adds_the_carriers_words_on_top_of_telesign():
    ctia = parse_keyword_map("ctia")
    assert ctia.detect("STOPALL") == (Action.STOP, "stopall")
    assert ctia.detect("optout.") == (Action.STOP, "optout")
    assert ctia.detect("Revoke") == (Action.STOP, "revoke")
    assert ctia.detect("UNSTOP") == (Action.START, "unstop")
    assert ctia.detect("yes") == (Action.START, "yes")
    assert ctia.detect("arrêt") == (Action.STOP, "arrêt")
    assert detect("STOPALL") == (Action.GENERIC, None)  # not in the default map


def test_own_keywords_add_and_override_a_preset():
    keywords = parse_keyword_map({"preset": "ctia", "keywords": {"JOIN": "generic", "Promo": "generic",
                                                                  "yes": "generic", "HALT": "stop"}})
    assert keywords.detect("join!") == (Action.GENERIC, "join")
    assert keywords.detect("PROMO") == (Action.GENERIC, "promo")
    assert keywords.detect("halt") == (Action.STOP, "halt")
    assert keywords.detect("yes") == (Action.GENERIC, "yes")  # overridden
    assert keywords.detect("join now") == (Action.GENERIC, None)
    assert parse_keyword_map({"preset": "none"}).detect("stop") == (Action.GENERIC, None)


def test_channel_then_language_then_all():
    keywords = parse_keyword_map({
        "keywords": {"alto": "help"},
        "channels": {"whatsapp": {"parar": "stop", "alto": "generic"}},
        "languages": {"es": {"alto": "stop", "ayuda": "help"}},
    })
    assert keywords.detect("alto", channel="whatsapp", country="ES") == (Action.GENERIC, "alto")
    assert keywords.detect("alto", channel="sms", country="es") == (Action.STOP, "alto")
    assert keywords.detect("alto", channel="sms", country="US") == (Action.HELP, "alto")
    assert keywords.detect("parar", channel="sms") == (Action.GENERIC, None)
    assert keywords.detect("parar", channel="whatsapp") == (Action.STOP, "parar")


def test_decode_uses_the_map_the_channel_and_the_country():
    keywords = parse_keyword_map({"preset": "ctia", "languages": {"ES": {"alto": "stop"}}})
    assert decode(sms("STOPALL"), keywords=keywords).action is Action.STOP
    assert decode(sms("STOPALL")).action is Action.GENERIC  # no map: the telesign preset
    assert decode(sms("Alto", country="ES"), keywords=keywords).keyword == "alto"
    assert decode(sms("Alto", country="US"), keywords=keywords).action is Action.GENERIC
    whatsapp = parse_keyword_map({"languages": {"US": {"finish": "stop"}}})
    body = fixture_bodies()["mo_whatsapp_text"].replace(b'"Thank you"', b'"Finish"')
    assert decode(body, keywords=whatsapp).action is Action.GENERIC  # no country in a WhatsApp text body
    body = fixture_bodies()["mo_rcs_keyword_stop"].replace(b'"action": "stop",', b"").replace(b'"Stop"', b'"finish"')
    assert decode(body, keywords=whatsapp).action is Action.STOP  # end_user_action.iso_country_code US


def test_telesign_action_still_wins():
    keywords = parse_keyword_map({"keywords": {"end": "generic", "start": "help"}})
    assert decode(fixture_bodies()["mo_whatsapp_keyword_stop"], keywords=keywords).action is Action.STOP
    assert decode(fixture_bodies()["mo_sms_keyword_start"], keywords=keywords).action is Action.START


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"keywords": {"YES": "start", "yes": "stop"}}, "keyword 'yes' is mapped to two actions"),
        ({"channels": {"sms": {"Stop!": "stop", "stop": "help"}}}, "keyword 'stop' is mapped to two actions in channels.sms"),
        ({"keywords": {"join": "subscribe"}}, "use stop, help, start or generic"),
        ({"preset": "tcpa"}, "unknown preset 'tcpa'"),
        ({"channels": {"fax": {}}}, "unknown channel 'fax'"),
        ({"languages": {"Spanish": {}}}, "not a country code"),
        ({"keywords": {"  ": "stop"}}, "empty once trimmed"),
        ({"words": {}}, "unknown section 'words'"),
        ([1], "must be a preset name or an object"),
    ],
)
def test_bad_maps_one_line(data, fragment):
    with pytest.raises(KeywordMapError, match=fragment.replace("(", r"\(")) as info:
        parse_keyword_map(data)
    assert "\n" not in str(info.value)
