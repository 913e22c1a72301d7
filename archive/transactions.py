"""A message's state and history rebuilt from the archive, for when its Redis state has expired.

The same state rules as the store (CONTRACT section 4): the current event
is the one of highest rank, and among equals the later occurred_at; history
lists every archived event, oldest first. The answer has the very shape the
Redis path gives (pipeline/transaction.py), so a client cannot tell a
week-old message from a fresh one but by `"source": "archive"`.
"""

from __future__ import annotations

import msgspec

from pipeline.event import Event, Outcome
from pipeline.transaction import HistoryItem, MessageState, Transaction

SELECT = ("SELECT event::text FROM events WHERE reference_id = %s "
          "ORDER BY occurred_at, event_id LIMIT 1000")

_decoder = msgspec.json.Decoder(Event)
_json = msgspec.json.Encoder()


def _rank(event: Event) -> int:
    # Mirrors the store's rank(): read > final > delivered (not final) > in flight.
    if event.status.outcome is Outcome.READ:
        return 3
    if event.status.final:
        return 2
    if event.status.outcome is Outcome.DELIVERED:
        return 1
    return 0


def _ts(event: Event) -> float:
    when = event.occurred_at or event.received_at
    return when.timestamp() if when is not None else 0.0


def transaction_body(reference_id: str, texts: list[str]) -> bytes | None:
    """The GET /v1/transactions/{reference_id} body from the archived events' JSON, or None if there are none."""
    if not texts:
        return None
    events = [_decoder.decode(text) for text in texts]
    e = max(events, key=lambda event: (_rank(event), _ts(event)))
    state = MessageState(kind=e.kind, channel=e.channel, status=e.status, occurred_at=e.occurred_at)
    history = [HistoryItem(code=h.status.code, outcome=h.status.outcome, occurred_at=h.occurred_at) for h in events]
    return _json.encode(Transaction(reference_id=reference_id, state=state, history=history))[:-1] + b',"source":"archive"}'
