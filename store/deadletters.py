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
import itertools
import time
import uuid
from collections.abc import Iterator
from typing import Literal

import msgspec
import redis

from config import get_settings
from store import keys
from store.capped_list import DEADLETTERS

# 128 MiB: about 100,000 failed ~1 KB events, before the oldest are dropped.
MAX_BYTES = 128 * 1024 * 1024

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


def add(client: redis.Redis, entry: DeadLetter, max_bytes: int | None = None) -> None:
    add_raw(client, _encoder.encode(entry), max_bytes)


def add_raw(client: redis.Redis, raw: bytes, max_bytes: int | None = None) -> None:
    """An entry already encoded as JSON, in the DeadLetter shape or the older {kind, payload, error, attempts}.

    Kept within TSPIPE_DEADLETTER_MAX_BYTES: the oldest entries are dropped
    (counted in tspipe_deadletters_dropped_total, and logged) rather than let
    a dead destination fill Redis.
    """
    DEADLETTERS.push(client, [raw], get_settings().deadletter_max_bytes if max_bytes is None else max_bytes)


def _raw_entries(client: redis.Redis) -> Iterator[tuple[bytes, DeadLetter]]:
    """Every entry, oldest first, read a page at a time."""
    for page in DEADLETTERS.pages(client, oldest_first=True):
        for raw in page:
            try:
                yield raw, _from_raw(raw)
            except msgspec.DecodeError:
                continue  # an entry in another shape is left alone, never lost


def iter_entries(client: redis.Redis, target: str | None = None, kind: str | None = None) -> Iterator[DeadLetter]:
    """Matching entries, oldest first, without holding the whole list."""
    for _, entry in _raw_entries(client):
        if (target is None or entry.target == target) and (kind is None or entry.kind == kind):
            yield entry


def list_entries(client: redis.Redis, target: str | None = None, kind: str | None = None,
                 limit: int | None = None, offset: int = 0) -> list[DeadLetter]:
    """One page of matching entries, oldest first (all of them when limit is None)."""
    stop = None if limit is None else offset + limit
    return list(itertools.islice(iter_entries(client, target, kind), offset, stop))


def count(client: redis.Redis) -> int:
    return client.llen(keys.DEADLETTER)


def remove(client: redis.Redis, entry_ids: list[str]) -> int:
    wanted = set(entry_ids)
    if not wanted:
        return 0
    raws = [raw for raw, e in _raw_entries(client) if e.id in wanted]
    return DEADLETTERS.remove(client, raws)


def purge(client: redis.Redis, target: str | None = None) -> int:
    if target is None:
        return DEADLETTERS.purge(client)
    return remove(client, [e.id for e in iter_entries(client, target)])
