"""The normalized event: the one shape every Telesign callback becomes (CONTRACT.md section 1).

Frozen Structs so an event can be shared between the state store, the
fan-out and plug-ins without anyone mutating it under the others' feet.
Every field is always present in the JSON (null or [] when there is nothing
to say), because receivers written in other languages should not have to
guess which keys exist.
"""

from __future__ import annotations

import enum
from datetime import datetime

import msgspec


class Kind(str, enum.Enum):
    DELIVERY = "delivery"
    READ = "read"
    VERIFY = "verify"
    INBOUND = "inbound"


class Channel(str, enum.Enum):
    SMS = "sms"
    MMS = "mms"
    RCS = "rcs"
    VIBER = "viber"
    WHATSAPP = "whatsapp"
    EMAIL = "email"


class Outcome(str, enum.Enum):
    DELIVERED = "delivered"
    READ = "read"
    PENDING = "pending"
    FAILED = "failed"
    BLOCKED = "blocked"
    REJECTED = "rejected"
    UNKNOWN = "unknown"
    RECEIVED = "received"


class Action(str, enum.Enum):
    STOP = "stop"
    HELP = "help"
    START = "start"
    GENERIC = "generic"


class Source(str, enum.Enum):
    """Where the body came from: a Telesign callback, or tspipe polling the status API."""

    CALLBACK = "callback"
    POLL = "poll"


# Media, Attempt and Event are not kw_only: decode builds them positionally,
# which costs a quarter of the keyword call (Event has twenty fields and is
# built once per callback). Everyone else should still pass keywords.
# gc=False: these frozen values never hold a reference cycle, so the cyclic
# garbage collector need not track the millions of them a worker builds.


class Status(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    code: int
    description: str | None = None
    final: bool = False
    outcome: Outcome = Outcome.UNKNOWN
    retryable: bool = False


class Media(msgspec.Struct, frozen=True, gc=False):
    url: str | None = None
    mime_type: str | None = None
    name: str | None = None
    size_bytes: int | None = None


class Attempt(msgspec.Struct, frozen=True, gc=False):
    channel: str | None = None
    code: int | None = None
    description: str | None = None
    reference_id: str | None = None
    final: bool = False
    outcome: Outcome = Outcome.UNKNOWN
    occurred_at: datetime | None = None


class VerifyState(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    code_state: str | None = None
    code_entered: str | None = None


class ErrorItem(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    code: int | None = None
    description: str | None = None


class Event(msgspec.Struct, frozen=True, gc=False):
    """One normalized callback.

    `event_id` is derived from the raw body, so a Telesign retry or a batch
    redelivered after a worker crash carries the same id and deduplicates.
    `raw` is the original body as text, exactly as received (it decoded as
    UTF-8 or it would not be an event), so nothing is lost downstream even
    where tspipe's normalization has no field for it.
    """

    event_id: str
    kind: Kind
    channel: Channel | None
    reference_id: str | None
    external_id: str | None
    status: Status
    occurred_at: datetime | None
    received_at: datetime | None
    phone_number: str | None
    email: str | None
    sender: str | None
    text: str | None
    media: list[Media] = []
    action: Action | None = None
    keyword: str | None = None
    attempts: list[Attempt] = []
    verify: VerifyState | None = None
    errors: list[ErrorItem] = []
    source: Source = Source.CALLBACK
    raw: str = ""

    @property
    def address(self) -> str | None:
        """The end user's address for opt-outs: the e-mail on the email channel, else the phone."""
        if self.channel is Channel.EMAIL and self.email:
            return self.email
        return self.phone_number or self.email


EVENT_ENCODER = msgspec.json.Encoder()
EVENT_DECODER = msgspec.json.Decoder(Event)
