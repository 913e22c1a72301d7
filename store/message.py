"""A tracked message's hot state: one small Redis string per reference id, and how it reads back.

Redis keeps only what the hot path and `/v1/transactions/{reference_id}`
need; the full normalized event and the raw body travel downstream and are
kept by the archive. One key per message (`keys.MESSAGE`) holds a msgpack
array, written by the apply script (store/state.py) and read here:

    [rank, ts, code, outcome, final, kind, channel, has_occurred, description, history]

- `rank`, `ts`: the current event's precedence and time (occurred_at, else
  received_at), what the monotonic rule compares;
- `code`, `outcome`, `final`, `kind`, `channel`: the current status, enums as
  small integers (the tuples below; append only, never reorder);
- `has_occurred`: whether `ts` is the event's occurred_at (else it is null);
- `description`: `false` when it is the status table's text for `code` (the
  usual case, so it costs one byte), else the text as sent ("" for none);
- `history`: one `[fingerprint, code, outcome, occurred_ts|false]` per
  applied event, in the order applied, capped at TSPIPE_HISTORY_MAX. The
  fingerprint (48 bits of the event id, a Lua-exact integer) is also the
  message's dedup set, so deduplication costs 9 bytes per event instead of
  a key of its own.

`false` stands for "none" everywhere: Lua tables cannot hold nil in arrays.
Phone numbers and e-mail addresses are never part of it. For 2 callbacks per
message the value is about 70 bytes; BENCHMARKS.md has the measured total.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone

import msgspec
import redis
import redis.asyncio as aioredis

from pipeline.event import Channel, Kind, Outcome, Status
from pipeline.status_codes import lookup
from pipeline.transaction import HistoryItem, MessageState, Transaction
from store import keys

# Stored as their index: append new members at the end, never reorder (stored states would change meaning).
KINDS: tuple[Kind, ...] = (Kind.DELIVERY, Kind.READ, Kind.VERIFY, Kind.INBOUND)
CHANNELS: tuple[Channel, ...] = (Channel.SMS, Channel.MMS, Channel.RCS, Channel.VIBER, Channel.WHATSAPP,
                                 Channel.EMAIL)
OUTCOMES: tuple[Outcome, ...] = (Outcome.DELIVERED, Outcome.READ, Outcome.PENDING, Outcome.FAILED,
                                 Outcome.BLOCKED, Outcome.REJECTED, Outcome.UNKNOWN, Outcome.RECEIVED)
# By value (str keys hash in C; an Enum member's __hash__ is Python code).
KIND_INDEX = {k.value: i for i, k in enumerate(KINDS)}
CHANNEL_INDEX = {c.value: i for i, c in enumerate(CHANNELS)}
OUTCOME_INDEX = {o.value: i for i, o in enumerate(OUTCOMES)}

# Positions in the stored array (0-based here; the Lua script adds 1).
RANK, TS, CODE, OUTCOME, FINAL, KIND, CHANNEL, HAS_OCCURRED, DESCRIPTION, HISTORY = range(10)


def rank(outcome: str, final: bool) -> int:
    """Order of precedence of a status (by outcome value): read > final > delivered (not final, e.g.
    WhatsApp 3000) > in flight.

    Read beats everything because it can only come after delivery; a final
    status beats any intermediate one; a non-final "delivered" still beats a
    "pending" that arrived late.
    """
    if outcome == "read":
        return 3
    if final:
        return 2
    return 1 if outcome == "delivered" else 0


def fingerprint(event_id: str) -> int:
    """48 bits of the event id (itself a SHA-256 prefix of the body): exact as a Lua number, unique per message."""
    try:
        return int(event_id[:12], 16)
    except ValueError:  # ids made elsewhere (tests, older versions) need not be hex
        return int.from_bytes(hashlib.blake2b(event_id.encode(), digest_size=6).digest(), "big")


def stored_description(description: str | None, code: int, channel: str | None) -> str | bool:
    """`False` when the table says the same (nothing to store), else the text as sent ("" for none)."""
    if description is not None and description == lookup(code, channel).description:
        return False
    return description or ""




def _when(seconds: float | bool) -> datetime | None:
    if seconds is False or seconds is None:
        return None
    return datetime.fromtimestamp(seconds, timezone.utc)


def decode(reference_id: str, raw: bytes) -> Transaction:
    """The stored array as the query API answers it."""
    row = msgspec.msgpack.decode(raw)
    code = row[CODE]
    channel = CHANNELS[row[CHANNEL]] if row[CHANNEL] is not False else None
    description = row[DESCRIPTION]
    info = lookup(code, channel.value if channel else None)
    if description is False:
        description = info.description
    state = MessageState(
        kind=KINDS[row[KIND]],
        channel=channel,
        status=Status(code=code, description=description or None, final=bool(row[FINAL]),
                      outcome=OUTCOMES[row[OUTCOME]], retryable=info.retryable),
        occurred_at=_when(row[TS]) if row[HAS_OCCURRED] else None,
    )
    history = [HistoryItem(code=h[1], outcome=OUTCOMES[h[2]], occurred_at=_when(h[3])) for h in row[HISTORY]]
    return Transaction(reference_id=reference_id, state=state, history=history)


def fingerprints(raw: bytes) -> list[int]:
    """The fingerprints of the events applied to this message (its dedup set), oldest first."""
    return [h[0] for h in msgspec.msgpack.decode(raw)[HISTORY]]


def read(client: redis.Redis, reference_id: str) -> Transaction | None:
    raw = client.get(keys.MESSAGE.format(reference_id=reference_id))
    return decode(reference_id, raw) if raw else None


async def read_async(client: aioredis.Redis, reference_id: str) -> Transaction | None:
    raw = await client.get(keys.MESSAGE.format(reference_id=reference_id))
    return decode(reference_id, raw) if raw else None


def history_lengths(client: redis.Redis, reference_ids: list[str]) -> list[int]:
    """How many events each message has applied (0: unknown), in one pipeline: exactly-once checks use it."""
    pipe = client.pipeline(transaction=False)
    for ref in reference_ids:
        pipe.get(keys.MESSAGE.format(reference_id=ref))
    return [len(fingerprints(raw)) if raw else 0 for raw in pipe.execute()]


def count(client: redis.Redis, reference_pattern: str = "*") -> int:
    """Tracked messages whose reference id matches the glob pattern (a SCAN: for tests, benches and operators)."""
    return sum(1 for _ in client.scan_iter(match=keys.MESSAGE.format(reference_id=reference_pattern), count=1000))
