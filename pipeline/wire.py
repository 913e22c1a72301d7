"""The shapes Telesign sends, as permissive msgspec Structs.

One Struct covers every callback family, because some families carry no
field that names them (a Viber MO is just `content.text`): decode once,
classify after. Unknown fields are ignored; numbers may arrive as strings
(the decoder is not strict). `content` differs per channel, including
numbered keys (`text_1`, `url_image_1`), so it stays a plain mapping.
"""

from __future__ import annotations

from typing import Any

import msgspec

Scalar = str | int | float | bool | None


class WireStatus(msgspec.Struct):
    code: int
    description: Scalar = None
    updated_on: Scalar = None
    last_channel: Scalar = None
    reference_id: Scalar = None


class WireAttempt(msgspec.Struct):
    code: int | None = None
    description: Scalar = None
    reference_id: Scalar = None
    updated_on: Scalar = None


class WireUserResponse(msgspec.Struct):
    sender_id: Scalar = None
    iso_country_code: Scalar = None
    action: Scalar = None
    keyword: Scalar = None
    phone_number: Scalar = None
    mo_message: Scalar = None


class WireVerify(msgspec.Struct):
    code_state: Scalar = None
    code_entered: Scalar = None


class WireError(msgspec.Struct):
    code: int | None = None
    description: Scalar = None


class WireCallback(msgspec.Struct):
    status: WireStatus
    reference_id: Scalar = None
    external_id: Scalar = None
    sub_resource: Scalar = None
    phone_number: Scalar = None
    email: Scalar = None
    rcs_sender_id: Scalar = None
    waba_phone_number: Scalar = None
    channel_status: list[dict[str, WireAttempt]] | None = None
    user_response: WireUserResponse | None = None
    verify: WireVerify | None = None
    errors: list[WireError] | None = None
    content: dict[str, Any] | None = None


DECODER = msgspec.json.Decoder(WireCallback, strict=False)


def text(value: Scalar) -> str | None:
    """A string field as sent; numbers become their text, empty and non-scalars become None.

    Called about ten times per body and almost always with a str or None,
    so those two are answered first by exact type (cheaper than isinstance).
    """
    if type(value) is str:
        return value or None
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return str(value)
    return None


def sub(mapping: Any, key: str) -> Any:
    """mapping[key] when mapping is a dict, else None: `content` is untyped and may hold anything."""
    return mapping.get(key) if type(mapping) is dict else None
