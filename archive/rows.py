"""What one archived row holds, and how addresses are normalized for search and erasure.

An ArchiveRow is an event with the facts only the ingress knew: the exact
body, when it was received and the request id. Phone numbers are kept as
E.164 digits (no '+', spaces or dashes) and e-mails lower-cased, so that a
search for "+1 123-456-7890" and one for "11234567890" meet the same index
entry, and erasure finds every spelling of one person.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

import msgspec

from pipeline.event import EVENT_ENCODER, Event

_NO_RAW = b',"raw":""}'
_NOT_DIGITS = re.compile(r"[^0-9]+")  # ASCII digits only, as before (str.isdigit would keep other scripts' digits)


class ArchiveRow(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    event: Event
    body: bytes
    received_at: datetime
    request_id: str = ""

    @property
    def occurred_at(self) -> datetime:
        """The partition key: the body's own time, or received_at for a body without one (then `undated`)."""
        return self.event.occurred_at or self.received_at


def normalize_phone(value: str | None) -> str | None:
    """E.164 digits: '+1 (123) 456-7890' -> '11234567890'; None when there are no digits."""
    if not value:
        return None
    digits = _NOT_DIGITS.sub("", value)
    return digits or None


def normalize_email(value: str | None) -> str | None:
    if not value:
        return None
    return value.strip().lower() or None


def is_email(address: str) -> bool:
    return "@" in address


def normalize_address(address: str) -> str | None:
    """An address as the archive stores it, whichever kind it is."""
    return normalize_email(address) if is_email(address) else normalize_phone(address)


def event_json(event: Event) -> str:
    """The normalized event as JSON without `raw` (the row keeps the body in its own column, once)."""
    return event_json_bytes(event).decode()


def event_json_bytes(event: Event) -> bytes:
    """event_json() as UTF-8 bytes: the json column's binary wire format (the text itself), for a binary COPY."""
    # `raw` is the last field of Event, so the empty one is the last 10 bytes.
    encoded = EVENT_ENCODER.encode(msgspec.structs.replace(event, raw=""))
    if encoded.endswith(_NO_RAW):
        encoded = encoded[: -len(_NO_RAW)] + b"}"
    return encoded


def copy_values(row: ArchiveRow) -> tuple:
    """The row in the column order of writer.COLUMNS, for a binary COPY (the event as json bytes)."""
    ev = row.event
    return (
        row.occurred_at,
        ev.event_id,
        row.received_at,
        row.request_id,
        ev.occurred_at is None,
        ev.kind.value,
        ev.channel.value if ev.channel is not None else None,
        ev.status.outcome.value,
        ev.status.code,
        ev.reference_id,
        normalize_phone(ev.phone_number),
        normalize_email(ev.email),
        event_json_bytes(ev),
        row.body,
    )


def utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=timezone.utc)
