"""What GET /v1/transactions/{reference_id} answers (CONTRACT section 3), whoever answers it.

The Redis hot state (store/message.py) and the archive (archive/transactions.py)
both build these Structs, so a message looks the same before and after its
Redis state expires.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from pipeline.event import Channel, Kind, Outcome, Status


class MessageState(msgspec.Struct, frozen=True, kw_only=True):
    """The current state of a message (CONTRACT section 3's `state`)."""

    kind: Kind
    channel: Channel | None
    status: Status
    occurred_at: datetime | None


class HistoryItem(msgspec.Struct, frozen=True, kw_only=True):
    """One applied callback, as the history shows it."""

    code: int
    outcome: Outcome
    occurred_at: datetime | None


class Transaction(msgspec.Struct, frozen=True, kw_only=True):
    reference_id: str
    state: MessageState
    history: list[HistoryItem]
