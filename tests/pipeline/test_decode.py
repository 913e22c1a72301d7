"""decode(): every fixture, every malformed body, and properties over arbitrary input."""

import json
from datetime import datetime, timezone

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline import Event, InvalidCallback, decode
from pipeline.event import EVENT_DECODER, EVENT_ENCODER, Channel, Kind
from tests.conftest import fixture_bodies

BODIES = fixture_bodies()

# name: (kind, channel, outcome, final, action, keyword, text, sender)
EXPECTED = {
    "delivery_rcs_fallback_to_sms": ("delivery", "sms", "delivered", True, None, None, None, None),
    "mo_email_unsubscribe": ("inbound", "email", "received", True, "stop", "unsubscribe", None, None),
    "mo_mms_image_and_text": ("inbound", "mms", "received", True, "generic", None, "Thank you", None),
    "mo_rcs_image": ("inbound", "rcs", "received", True, "generic", None, None, "rcs_sender_example"),
    "mo_rcs_keyword_stop": ("inbound", "rcs", "received", True, "stop", "stop", "Stop", None),
    "mo_sms_keyword_start": ("inbound", "sms", "received", True, "start", "start", "Start", "4442"),
    "mo_viber_text": ("inbound", None, "received", True, "generic", None, "Thank you! 😎", None),
    "mo_whatsapp_keyword_stop": ("inbound", "whatsapp", "received", True, "stop", "end", "end", "11234567891"),
    "mo_whatsapp_text": ("inbound", "whatsapp", "received", True, "generic", None, "Thank you", "11234567891"),
    "read_notification": ("read", None, "read", True, None, None, None, None),
}


def test_every_fixture_is_covered():
    assert set(EXPECTED) == set(BODIES)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture(name):
    event = decode(BODIES[name])
    kind, channel, outcome, final, action, keyword, text, sender = EXPECTED[name]
    assert event.kind.value == kind
    assert (event.channel.value if event.channel else None) == channel
    assert event.status.outcome.value == outcome
    assert event.status.final is final
    assert (event.action.value if event.action else None) == action
    assert event.keyword == keyword
    assert event.text == text
    assert event.sender == sender
    assert event.occurred_at.tzinfo is timezone.utc
    assert event.raw.encode() == BODIES[name]
    assert event.received_at is None


def test_delivery_attempts_in_order():
    event = decode(BODIES["delivery_rcs_fallback_to_sms"])
    assert [(a.channel, a.code, a.final, a.outcome.value) for a in event.attempts] == [
        ("rcs", 3056, False, "failed"),
        ("sms", 3000, True, "delivered"),
    ]
    assert event.attempts[0].occurred_at == datetime(2020, 5, 4, 22, 5, 0, 325000, tzinfo=timezone.utc)
    assert event.occurred_at == datetime(2020, 5, 4, 22, 7, 1, 226000, tzinfo=timezone.utc)
    assert event.reference_id == "35C8B5D509BC10689196FED2AD551B8A"
    assert event.external_id is None


def test_media():
    mms = decode(BODIES["mo_mms_image_and_text"])
    assert len(mms.media) == 1 and mms.media[0].url.startswith("https://messaging-qa.telesign.com/mms/")
    rcs = decode(BODIES["mo_rcs_image"]).media[0]
    assert (rcs.name, rcs.mime_type, rcs.size_bytes) == ("61999.jpg", "image/jpeg", 335861)
    assert rcs.url.startswith("https://rcs-user-content-eu")


def test_addresses():
    assert decode(BODIES["mo_sms_keyword_start"]).phone_number == "11234567890"
    email = decode(BODIES["mo_email_unsubscribe"])
    assert email.email and email.address == email.email


def test_channel_hint_for_viber_and_read():
    assert decode(BODIES["mo_viber_text"], channel_hint="viber").channel.value == "viber"
    assert decode(BODIES["read_notification"], channel_hint="whatsapp").channel.value == "whatsapp"
    # A body that names its channel keeps it.
    assert decode(BODIES["mo_sms_keyword_start"], channel_hint="viber").channel.value == "sms"


def test_3000_on_whatsapp_is_not_final():
    body = json.dumps({"reference_id": "A", "status": {"code": 3000, "description": "Delivered", "last_channel": "whatsapp", "updated_on": "2021-11-26T15:01:39.000000Z"}}).encode()
    event = decode(body)
    assert event.status.outcome.value == "delivered" and not event.status.final


def test_verify_and_numeric_strings():
    body = json.dumps({
        "reference_id": "B", "sub_resource": "sms", "status": {"code": "290", "description": "Message in progress", "updated_on": "Thu, 23 Jun 2022 19:03:44 GMT"},
        "verify": {"code_state": "VALID", "code_entered": 1234}, "additional_info": {"code_entered": 1234, "message_parts_count": "1"},
        "errors": [{"code": -10001, "description": "x"}],
    }).encode()
    event = decode(body)
    assert event.kind.value == "verify" and event.channel.value == "sms"
    assert event.status.code == 290 and event.status.outcome.value == "pending" and not event.status.final
    assert event.verify.code_state == "VALID" and event.verify.code_entered == "1234"
    assert event.occurred_at == datetime(2022, 6, 23, 19, 3, 44, tzinfo=timezone.utc)
    assert event.errors[0].code == -10001


def test_unknown_code_and_unknown_fields():
    event = decode(b'{"status": {"code": 4242, "brand_new": true}, "surprise": [1, 2]}')
    assert event.status.outcome.value == "unknown"


def test_detected_keyword_when_telesign_sent_none():
    body = json.dumps({"status": {"code": 1500}, "phone_number": "15550001111", "content": {"text": "  Arrêt! "}}).encode()
    event = decode(body, channel_hint="viber")
    assert (event.action.value, event.keyword) == ("stop", "arrêt")
    body = json.dumps({"status": {"code": 1500}, "content": {"text": "please stop"}}).encode()
    assert decode(body).action.value == "generic"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"", "empty"),
        (b"\xff\xfe{}", "UTF-8"),
        (b'{"status": {"code": 1}, "unknown": "\xff"}', "not valid UTF-8 (byte 36)"),
        (b"not json", "not JSON"),
        (b'{"status": {"code": 1}', "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'"text"', "not a JSON object"),
        (b"{}", "no `status`"),
        (b'{"status": null}', "$.status"),
        (b'{"status": {}}', "status.code"),
        (b'{"status": {"code": "abc"}}', "$.status.code"),
        (b'{"status": {"code": [1]}}', "$.status.code"),
        (b'{"status": {"code": 1}, "content": ' + b"[" * 50000 + b"]" * 50000 + b"}", ""),
    ],
)
def test_malformed_bodies(body, fragment):
    with pytest.raises(InvalidCallback) as info:
        decode(body)
    assert fragment in str(info.value)


@pytest.mark.parametrize("name", sorted(BODIES))
def test_round_trip(name):
    event = decode(BODIES[name], received_at=datetime(2024, 1, 1, tzinfo=timezone.utc))
    assert EVENT_DECODER.decode(EVENT_ENCODER.encode(event)) == event
    assert msgspec.json.decode(msgspec.json.encode(event), type=Event) == event


def test_event_id_is_stable_and_body_derived():
    body = BODIES["read_notification"]
    assert decode(body).event_id == decode(bytes(body)).event_id
    assert decode(body).event_id != decode(body + b" ").event_id


def test_every_field_present_in_json():
    encoded = json.loads(EVENT_ENCODER.encode(decode(BODIES["read_notification"])))
    for field in ("kind", "channel", "reference_id", "external_id", "status", "occurred_at", "received_at",
                  "phone_number", "email", "sender", "text", "media", "action", "keyword", "attempts", "verify", "errors"):
        assert field in encoded
    assert encoded["occurred_at"] == "2021-11-26T15:01:39Z"


def _ok_or_invalid(body: bytes) -> None:
    try:
        event = decode(body)
    except InvalidCallback:
        return
    assert isinstance(event, Event)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=512))
def test_any_bytes(body):
    _ok_or_invalid(body)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
keys = st.sampled_from(["status", "code", "content", "reference_id", "channel_status", "user_response", "verify",
                        "errors", "sub_resource", "phone_number", "email", "text", "end_user_action", "file", "payload",
                        "rcs_sender_id", "waba_phone_number", "updated_on", "last_channel", "action"]) | st.text(max_size=8)
json_objects = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(keys, children, max_size=5),
    max_leaves=25,
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(keys, json_objects, max_size=6))
def test_any_json_object(obj):
    _ok_or_invalid(json.dumps(obj).encode())


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(BODIES)), st.data())
def test_mutated_fixtures(name, data):
    obj = json.loads(BODIES[name])
    key = data.draw(st.sampled_from(sorted(obj)))
    obj[key] = data.draw(json_values)
    _ok_or_invalid(json.dumps(obj).encode())


# --- paths added for speed (fast paths and caches must not change results) ---


def test_mms_several_numbered_texts_join_in_numeric_order():
    body = json.dumps(
        {
            "status": {"code": 1500},
            "sub_resource": "mo_mms",
            "content": {"text_10": "c", "text_2": "b", "text_1": "a", "text_x": "no", "url_image_2": "u2", "url_image_1": "u1"},
        }
    ).encode()
    event = decode(body)
    assert event.text == "a\nb\nc"
    assert [m.url for m in event.media] == ["u1", "u2"]


def test_numbers_in_string_fields_become_text():
    body = b'{"status":{"code":3000,"description":123,"last_channel":"sms"},"reference_id":42,"phone_number":15551234567,"email":""}'
    event = decode(body)
    assert event.reference_id == "42"
    assert event.phone_number == "15551234567"
    assert event.email is None
    assert event.status.description == "123"


def test_status_cache_keeps_equal_but_different_descriptions_apart():
    # 1 == True == 1.0 as dict keys; each must still give its own description.
    made = [decode(b'{"status":{"code":3000,"description":%s}}' % d).status.description for d in (b"1", b"true", b"1.0", b'"1"', b"null")]
    assert made == ["1", "Delivered", "1.0", "1", "Delivered"]
    # And a cached Status is the same answer as a fresh one, for the read-receipt rule too.
    assert decode(b'{"status":{"code":3000,"last_channel":"whatsapp"}}').status.final is False
    assert decode(b'{"status":{"code":3000,"last_channel":"sms"}}').status.final is True


def test_timestamp_cache_returns_same_value_and_none_for_junk():
    from pipeline.timestamps import parse_timestamp

    first = parse_timestamp("2020-05-04 22:07:01:226")
    assert parse_timestamp("2020-05-04 22:07:01:226") == first == datetime(2020, 5, 4, 22, 7, 1, 226000, tzinfo=timezone.utc)
    assert parse_timestamp("not a time") is None
    assert parse_timestamp("not a time") is None
    assert parse_timestamp("") is None


def test_numbers_and_booleans_in_nested_text_fields_take_the_slow_path():
    body = json.dumps(
        {
            "status": {"code": "1500", "updated_on": "2023-10-13T11:46:00Z", "reference_id": 7},
            "user_response": {"mo_message": 12345, "sender_id": 55, "phone_number": 15551234567, "keyword": True},
            "channel_status": [{"sms": {"code": 3000, "description": 1.5, "reference_id": False}}],
            "verify": {"code_state": "VALID", "code_entered": 1234},
            "errors": [{"code": -10001, "description": 9}],
        }
    ).encode()
    event = decode(body)
    assert (event.kind, event.channel) == (Kind.INBOUND, Channel.SMS)
    assert event.text == "12345" and event.sender == "55" and event.phone_number == "15551234567"
    assert event.keyword is None
    assert event.attempts[0].description == "1.5" and event.attempts[0].reference_id is None
    assert event.verify.code_entered == "1234"
    assert event.errors[0].description == "9"


def test_a_container_in_a_text_field_is_still_invalid():
    with pytest.raises(InvalidCallback, match=r"\$\.reference_id"):
        decode(b'{"status":{"code":3000},"reference_id":{"a":1}}')
    with pytest.raises(InvalidCallback, match=r"\$\.user_response\.mo_message"):
        decode(b'{"status":{"code":1500},"user_response":{"mo_message":[1]}}')


def test_scalar_then_junk_is_not_json():
    with pytest.raises(InvalidCallback, match="not JSON"):
        decode(b"0\x00")


def test_event_id_is_128_bits_of_sha256():
    import hashlib

    body = BODIES["read_notification"]
    assert decode(body).event_id == hashlib.sha256(body).hexdigest()[:32]


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(BODIES)), st.lists(st.tuples(st.integers(min_value=0), st.binary(min_size=1, max_size=3)),
                                                 min_size=1, max_size=4))
def test_decode_raises_only_invalid_callback_for_fixture_bytes_mutated_anywhere(name, mutations):
    """Issue 11, item 10: bytes overwritten at random positions (invalid UTF-8 inside a string field
    among them) give an event or InvalidCallback, never UnicodeDecodeError or anything else."""
    body = bytearray(BODIES[name])
    for position, replacement in mutations:
        at = position % len(body)
        body[at:at + len(replacement)] = replacement
    _ok_or_invalid(bytes(body))


@pytest.mark.parametrize("field", ["reference_id", "external_id", "phone_number", "sub_resource"])
def test_invalid_utf8_in_a_string_field_is_invalid_callback(field):
    body = b'{"%s": "\xff\xfe", "status": {"code": 200, "description": "Delivered"}}' % field.encode()
    with pytest.raises(InvalidCallback, match="not valid UTF-8"):
        decode(body)
