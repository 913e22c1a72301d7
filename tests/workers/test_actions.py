"""Auto-reply choice and the Telesign client's request shapes, against a local fake Telesign."""

from __future__ import annotations

import base64
import json

import pytest

import pipeline
from tests.conftest import fixture_bodies
from tests.workers.fake_telesign import FakeTelesign
from config.autoreplies import load_autoreplies
from workers.actions import autoreplies_for
from workers.telesign_client import TelesignError, send_reply


def decoded(name: str):
    return pipeline.decode(fixture_bodies()[name])


def test_off_until_configured():
    assert autoreplies_for([decoded("mo_whatsapp_keyword_stop")], load_autoreplies(None)) == []


def test_language_from_iso_country_code_then_default():
    config = load_autoreplies('{"stop": {"default": "Bye", "US": "Bye (US)"}, "start": {"default": "Hi"}}')
    stop = autoreplies_for([decoded("mo_whatsapp_keyword_stop")], config)
    start = autoreplies_for([decoded("mo_sms_keyword_start")], config)  # RS: no RS text, default used
    assert [r.message for r in stop] == ["Bye (US)"] and stop[0].channel == "whatsapp"
    assert [r.message for r in start] == ["Hi"]


def test_omnichannel_json_with_basic_auth():
    with FakeTelesign() as fake:
        send_reply(fake.url, "CUST", "KEY", channel="whatsapp", phone_number="111", email=None, message="Bye")
    request = fake.requests[0]
    assert request["path"] == "/v1/omnichannel"
    assert request["auth"] == "Basic " + base64.b64encode(b"CUST:KEY").decode()
    body = json.loads(request["body"])
    assert body["recipient"] == {"phone_number": "111"}
    assert body["channels"][0]["channel"] == "whatsapp" and body["channels"][0]["content"]["text"] == "Bye"


def test_server_error_raises_for_retry():
    with FakeTelesign(failures=1) as fake, pytest.raises(TelesignError, match="500"):
        send_reply(fake.url, "C", "K", channel="sms", phone_number="1", email=None, message="x")
