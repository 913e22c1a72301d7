"""The shapes Telesign sends, as msgspec Structs, and the two-step decode into them.

One Struct covers every callback family, because some families carry no
field that names them (a Viber MO is just `content.text`): decode once,
classify after. Unknown fields are ignored; numeric strings are accepted
where a number is expected (the decoder is not strict). `content` differs
per channel, including numbered keys (`text_1`, `url_image_1`), so it stays
a plain mapping.

Text fields are typed `str | None`, so the common body needs no per-field
work in Python after msgspec is done. Telesign's docs never show a number
where text belongs, but a sender might send one (`"reference_id": 42`): such
a body fails the typed decode and takes `decode_wire`'s slow path, which
turns numbers in text fields into their text and booleans into None, then
validates again. Either way the result is the same Struct.
"""

from __future__ import annotations

from typing import Any

import msgspec

from pipeline.errors import InvalidCallback

Text = str | None


class WireStatus(msgspec.Struct, gc=False):
    code: int
    description: Text = None
    updated_on: Text = None
    last_channel: Text = None
    reference_id: Text = None


class WireAttempt(msgspec.Struct, gc=False):
    code: int | None = None
    description: Text = None
    reference_id: Text = None
    updated_on: Text = None


class WireUserResponse(msgspec.Struct, gc=False):
    sender_id: Text = None
    iso_country_code: Text = None
    action: Text = None
    keyword: Text = None
    phone_number: Text = None
    mo_message: Text = None


class WireVerify(msgspec.Struct, gc=False):
    code_state: Text = None
    code_entered: Text = None


class WireError(msgspec.Struct, gc=False):
    code: int | None = None
    description: Text = None


class WireCallback(msgspec.Struct, gc=False):
    status: WireStatus
    reference_id: Text = None
    external_id: Text = None
    sub_resource: Text = None
    phone_number: Text = None
    email: Text = None
    rcs_sender_id: Text = None
    waba_phone_number: Text = None
    channel_status: list[dict[str, WireAttempt]] | None = None
    user_response: WireUserResponse | None = None
    verify: WireVerify | None = None
    errors: list[WireError] | None = None
    content: dict[str, Any] | None = None


WIRE_DECODER = msgspec.json.Decoder(WireCallback, strict=False)


def _text_fields(cls: type[msgspec.Struct]) -> frozenset[str]:
    return frozenset(f.name for f in msgspec.structs.fields(cls) if f.type == Text)


_TOP_TEXT = _text_fields(WireCallback)
_STATUS_TEXT = _text_fields(WireStatus)
_ATTEMPT_TEXT = _text_fields(WireAttempt)
_USER_RESPONSE_TEXT = _text_fields(WireUserResponse)
_VERIFY_TEXT = _text_fields(WireVerify)
_ERROR_TEXT = _text_fields(WireError)


def decode_wire(body: bytes) -> WireCallback:
    """Decode a body or raise InvalidCallback naming the problem (never anything else)."""
    try:
        return WIRE_DECODER.decode(body)
    except msgspec.ValidationError:
        pass  # maybe only numbers in text fields: the slow path below
    except msgspec.DecodeError as exc:
        raise InvalidCallback(_explain_decode(bytes(body), str(exc))) from None
    except RecursionError:
        raise InvalidCallback("body is nested too deeply") from None
    except UnicodeDecodeError as exc:  # msgspec's answer to invalid UTF-8 inside a string field
        raise InvalidCallback(f"body is not valid UTF-8 (byte {exc.start} of a string field)") from None
    try:
        generic = msgspec.json.decode(body)
        return msgspec.convert(_coerce_texts(generic), WireCallback, strict=False)
    except msgspec.ValidationError as exc:
        raise InvalidCallback(_explain_validation(str(exc))) from None
    except msgspec.DecodeError as exc:  # not JSON after all, e.g. `0` followed by junk
        raise InvalidCallback(_explain_decode(bytes(body), str(exc))) from None
    except RecursionError:
        raise InvalidCallback("body is nested too deeply") from None
    except UnicodeDecodeError as exc:
        raise InvalidCallback(f"body is not valid UTF-8 (byte {exc.start} of a string field)") from None


def text(value: object) -> str | None:
    """A text field's value as sent: numbers become their text; empty, booleans and containers become None."""
    if type(value) is str:
        return value or None
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        return value or None
    if isinstance(value, (int, float)):
        return str(value)
    return None


def _coerce_texts(body: Any) -> Any:
    """Numbers and booleans in the known text fields -> text or None, along the Structs' paths only."""
    if type(body) is not dict:
        return body
    _coerce(body, _TOP_TEXT)
    _coerce(body.get("status"), _STATUS_TEXT)
    _coerce(body.get("user_response"), _USER_RESPONSE_TEXT)
    _coerce(body.get("verify"), _VERIFY_TEXT)
    for entry in _items(body.get("channel_status")):
        if type(entry) is dict:
            for attempt in entry.values():
                _coerce(attempt, _ATTEMPT_TEXT)
    for error in _items(body.get("errors")):
        _coerce(error, _ERROR_TEXT)
    return body


def _items(value: Any) -> list[Any]:
    return value if type(value) is list else []


def _coerce(obj: Any, fields: frozenset[str]) -> None:
    if type(obj) is not dict:
        return
    for name in fields & obj.keys():
        value = obj[name]
        if isinstance(value, (bool, int, float)):
            obj[name] = text(value)


def _explain_validation(message: str) -> str:
    what, _, path = message.partition(" - at `")
    path = path.rstrip("`") or "$"
    if path == "$" and what.startswith("Expected `object`"):
        got = what.split("got `", 1)[-1].rstrip("`")
        return f"body is not a JSON object (got {got})"
    if path == "$" and what == "Object missing required field `status`":
        return "body has no `status` object: not a Telesign callback"
    if path == "$.status" and what == "Object missing required field `code`":
        return "body has no `status.code`"
    return f"bad value at {path}: {what}"


def _explain_decode(body: bytes, message: str) -> str:
    if not body.strip():
        return "body is empty"
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"body is not valid UTF-8 (byte {exc.start})"
    return f"body is not JSON: {message}"
