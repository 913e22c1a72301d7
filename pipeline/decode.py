"""The one entry point: raw callback bytes -> one normalized Event.

The body is decoded once into a permissive Struct, then the family modules
fill in what they know. Everything that can go wrong with a body becomes
InvalidCallback with a message naming the problem and, where there is one,
the JSON path; nothing else escapes, so a worker can quarantine the body
and carry on with its batch.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

import msgspec

from pipeline.delivery import attempts_of, status_of
from pipeline.errors import InvalidCallback
from pipeline.event import Channel, ErrorItem, Event, Kind, Source
from pipeline.inbound import SUB_RESOURCE_CHANNELS, channel_marker, inbound_of
from pipeline.read import is_read
from pipeline.status_codes import INBOUND
from pipeline.timestamps import parse_timestamp
from pipeline.verify import verify_of
from pipeline.wire import DECODER, WireCallback, text

CHANNELS = {c.value: c for c in Channel}
# A callback URL per product: the verify route's messages go out by SMS.
HINT_CHANNELS = {**{c.value: c for c in Channel}, "verify": Channel.SMS}


# Enum members as module constants: `Kind.INBOUND` is a descriptor lookup
# (~80 ns on 3.11) and decode would pay it several times per body.
_INBOUND, _VERIFY, _READ, _DELIVERY = Kind.INBOUND, Kind.VERIFY, Kind.READ, Kind.DELIVERY
_SMS = Channel.SMS
_blake2b = hashlib.blake2b


def event_id_for(body: bytes) -> str:
    """Stable id of a body: Telesign's retries and redelivered batches carry the same bytes."""
    return _blake2b(body, digest_size=16).hexdigest()


def decode(
    body: bytes,
    channel_hint: str | None = None,
    received_at: datetime | None = None,
    source: Source = Source.CALLBACK,
) -> Event:
    wire = _decode_wire(body)
    status = wire.status
    code = status.code
    sub_resource = text(wire.sub_resource)

    if code == INBOUND or (sub_resource is not None and sub_resource.startswith("mo_")):
        kind = _INBOUND
    elif wire.verify is not None:
        kind = _VERIFY
    elif is_read(code):
        kind = _READ
    else:
        kind = _DELIVERY

    channel = _channel(wire, kind, sub_resource, channel_hint)
    channel_name = channel.value if channel else None

    user_response = wire.user_response
    phone = text(wire.phone_number)
    if phone is None and user_response is not None:
        phone = text(user_response.phone_number)

    text_value = sender = keyword = action = None
    media: list = []
    if kind is _INBOUND:
        text_value, sender, media, action, keyword = inbound_of(wire, channel_name)

    return Event(
        event_id=event_id_for(body),
        kind=kind,
        channel=channel,
        reference_id=text(wire.reference_id),
        external_id=text(wire.external_id),
        status=status_of(status, channel_name),
        occurred_at=parse_timestamp(status.updated_on),
        received_at=received_at,
        phone_number=phone,
        email=text(wire.email),
        sender=sender,
        text=text_value,
        media=media,
        action=action,
        keyword=keyword,
        attempts=attempts_of(wire) if wire.channel_status else [],
        verify=verify_of(wire.verify) if wire.verify is not None else None,
        errors=[ErrorItem(code=e.code, description=text(e.description)) for e in wire.errors] if wire.errors else [],
        source=source,
        raw=_utf8(body),
    )


def _channel(wire: WireCallback, kind: Kind, sub_resource: str | None, hint: str | None) -> Channel | None:
    last = text(wire.status.last_channel)
    if last:
        found = CHANNELS.get(last.lower())
        if found is not None:
            return found
    if sub_resource:
        name = SUB_RESOURCE_CHANNELS.get(sub_resource.lower())
        if name is not None:
            return CHANNELS[name]
    if kind is _INBOUND:
        marker = channel_marker(wire)
        if marker:
            return CHANNELS[marker]
    if hint and hint.lower() in HINT_CHANNELS:
        return HINT_CHANNELS[hint.lower()]
    if kind is _VERIFY:
        return _SMS
    return None


def _decode_wire(body: bytes) -> WireCallback:
    if type(body) is not bytes and not isinstance(body, (bytes, bytearray, memoryview)):
        raise InvalidCallback(f"body must be bytes, got {type(body).__name__}")
    try:
        return DECODER.decode(body)
    except msgspec.ValidationError as exc:
        raise InvalidCallback(_explain_validation(str(exc))) from None
    except msgspec.DecodeError as exc:
        raise InvalidCallback(_explain_decode(bytes(body), str(exc))) from None
    except RecursionError:
        raise InvalidCallback("body is nested too deeply") from None


def _utf8(body: bytes) -> str:
    """The body as text. msgspec skips unknown fields without checking their UTF-8, so check it here."""
    try:
        return body.decode("utf-8") if type(body) is bytes else bytes(body).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidCallback(f"body is not valid UTF-8 (byte {exc.start})") from None


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
