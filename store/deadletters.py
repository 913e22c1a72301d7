"""Dead-letter storage: deliveries, plug-in calls and auto-replies that exhausted their attempts.

One Redis list (keys.DEADLETTER, newest first) of JSON entries in the
DeadLetter shape, so `tspipe dlq` can list, replay one by id, or purge, and
so other modules (the auto-reply task) can LPUSH entries of their own kind
in the same shape. A list rather than a hash because it keeps failure order
and is what any writer can append to with one command. Sending entries back
(replay) is delivery policy and lives in workers/replay.py.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from typing import Literal

import msgspec
import redis

from store import keys

Kind = Literal["destination", "plugin", "autoreply"]


class DeadLetter(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    kind: Kind
    target: str  # destination name, plug-in task name, or "autoreply"
    event: msgspec.Raw  # the event (or batch of events) as JSON, exactly as it would have been sent
    error: str
    attempts: int
    failed_at: float  # unix time


class _Loose(msgspec.Struct, kw_only=True):
    """What any writer might have pushed: the DeadLetter fields, or an older {kind, payload, error, attempts}."""

    id: str | None = None
    kind: str = "destination"
    target: str | None = None
    event: msgspec.Raw = msgspec.Raw(b"")  # Raw cannot sit in a union with None; empty means absent
    payload: msgspec.Raw = msgspec.Raw(b"")
    error: str = ""
    attempts: int = 0
    failed_at: float = 0.0


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(_Loose)


def _from_raw(raw: bytes) -> DeadLetter:
    loose = _decoder.decode(raw)
    kind = loose.kind if loose.kind in ("destination", "plugin", "autoreply") else "destination"
    return DeadLetter(
        # An entry without an id gets one derived from its bytes, so --id and removal still work.
        id=loose.id or hashlib.sha256(raw).hexdigest()[:32],
        kind=kind,
        target=loose.target or kind,
        event=loose.event if len(loose.event) else loose.payload if len(loose.payload) else msgspec.Raw(b"null"),
        error=loose.error,
        attempts=loose.attempts,
        failed_at=loose.failed_at,
    )


def new_entry(kind: Kind, target: str, event_json: bytes, error: str, attempts: int) -> DeadLetter:
    return DeadLetter(
        id=uuid.uuid4().hex,
        kind=kind,
        target=target,
        event=msgspec.Raw(event_json),
        error=error[:2000],
        attempts=attempts,
        failed_at=time.time(),
    )


def encode(entry: DeadLetter) -> bytes:
    return _encoder.encode(entry)


def add(client: redis.Redis, entry: DeadLetter) -> None:
    add_raw(client, _encoder.encode(entry))


def add_raw(client: redis.Redis, raw: bytes) -> None:
    """An entry already encoded as JSON, in the DeadLetter shape or the older {kind, payload, error, attempts}."""
    client.lpush(keys.DEADLETTER, raw)


def _raw_entries(client: redis.Redis) -> list[tuple[bytes, DeadLetter]]:
    out = []
    for raw in client.lrange(keys.DEADLETTER, 0, -1):
        try:
            out.append((raw, _from_raw(raw)))
        except msgspec.DecodeError:
            continue  # an entry in another shape is left alone, never lost
    return out


def list_entries(client: redis.Redis, target: str | None = None, kind: str | None = None) -> list[DeadLetter]:
    entries = [e for _, e in _raw_entries(client)]
    entries = [e for e in entries if (target is None or e.target == target) and (kind is None or e.kind == kind)]
    return sorted(entries, key=lambda e: e.failed_at)


def remove(client: redis.Redis, entry_ids: list[str]) -> int:
    wanted = set(entry_ids)
    raws = [raw for raw, e in _raw_entries(client) if e.id in wanted]
    if not raws:
        return 0
    pipe = client.pipeline()
    for raw in raws:
        pipe.lrem(keys.DEADLETTER, 1, raw)
    return sum(pipe.execute())


def purge(client: redis.Redis, target: str | None = None) -> int:
    if target is None:
        count = client.llen(keys.DEADLETTER)
        client.delete(keys.DEADLETTER)
        return count
    return remove(client, [e.id for e in list_entries(client, target)])
