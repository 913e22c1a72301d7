"""A message's state and history rebuilt from the archive, for when its Redis state has expired.

The same state rules as the store (CONTRACT section 4): the current event
is the one of highest rank, and among equals the later occurred_at; history
lists every archived event, oldest first.
"""

from __future__ import annotations

import msgspec

from pipeline.event import Event, Outcome

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
    current = max(range(len(events)), key=lambda i: (_rank(events[i]), _ts(events[i])))
    history = [
        {
            "event_id": e.event_id, "kind": e.kind.value, "code": e.status.code, "outcome": e.status.outcome.value,
            "final": e.status.final, "channel": e.channel.value if e.channel else None,
            "occurred_at": e.occurred_at.isoformat() if e.occurred_at else None,
            "received_at": e.received_at.isoformat() if e.received_at else None,
        }
        for e in events
    ]
    return (b'{"reference_id":' + _json.encode(reference_id) + b',"state":' + texts[current].encode()
            + b',"history":' + _json.encode(history) + b',"source":"archive"}')
