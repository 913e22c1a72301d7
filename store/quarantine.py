"""Quarantine storage: callback bodies that did not decode, with their reason.

One Redis list (keys.QUARANTINE, newest first) of JSON entries, so an
operator can check a decoder fix against the real payloads that failed
(`tspipe quarantine`). Capped in bytes (TSPIPE_QUARANTINE_MAX_BYTES) and in
entries (TSPIPE_QUARANTINE_MAX), oldest dropped first (store/capped_list.py);
written once per batch in one script call.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable

import msgspec
import redis

from store import keys
from store.capped_list import QUARANTINE

# 32 MiB: thousands of real failures (a callback is ~1 KB), but a flood of 64 KB junk cannot fill Redis.
MAX_BYTES = 32 * 1024 * 1024


class QuarantineEntry(msgspec.Struct, frozen=True, kw_only=True):
    """A body that did not decode. `body` is the text when UTF-8, else `body_b64` holds the bytes."""

    id: str
    reason: str
    received_at: float
    quarantined_at: float
    request_id: str = ""
    channel_hint: str | None = None
    body: str | None = None
    body_b64: str | None = None


_DECODER = msgspec.json.Decoder(QuarantineEntry)
_ENCODER = msgspec.json.Encoder()


def add(client: redis.Redis, entries: Iterable[QuarantineEntry], max_entries: int,
        max_bytes: int = MAX_BYTES) -> int:
    """Keep bodies that failed to decode, newest first, within the caps. Returns how many were added."""
    entries = list(entries)
    if not entries:
        return 0
    client.hincrby(keys.METRICS, "tspipe_quarantined_total", len(entries))
    QUARANTINE.push(client, [_ENCODER.encode(e) for e in entries], max_bytes, max_entries)
    return len(entries)


def decode(raw: bytes) -> QuarantineEntry:
    return _DECODER.decode(raw)


def newest(client: redis.Redis, limit: int = 100, offset: int = 0) -> list[QuarantineEntry]:
    """One page, newest first."""
    return [_DECODER.decode(raw) for raw in QUARANTINE.newest(client, limit, offset)]


def find(client: redis.Redis, entry_id: str) -> QuarantineEntry | None:
    """The newest entry with this id, paging through the list."""
    for page in QUARANTINE.pages(client):
        for raw in page:
            entry = _DECODER.decode(raw)
            if entry.id == entry_id:
                return entry
    return None


def matching(client: redis.Redis, ids: set[str] | None = None, limit: int = 10_000) -> list[tuple[bytes, QuarantineEntry]]:
    """(raw, entry) of the entries with these ids (every entry when None), oldest first, at most `limit`."""
    found: list[tuple[bytes, QuarantineEntry]] = []
    for page in QUARANTINE.pages(client, oldest_first=True):
        for raw in page:
            entry = _DECODER.decode(raw)
            if ids is None or entry.id in ids:
                found.append((raw, entry))
                if len(found) >= limit:
                    return found
    return found


def body_of(entry: QuarantineEntry) -> bytes:
    return entry.body.encode() if entry.body is not None else base64.b64decode(entry.body_b64 or "")


def remove(client: redis.Redis, raws: list[bytes]) -> int:
    """Take these entries off the list (after a replay queued them again)."""
    return QUARANTINE.remove(client, raws)


def purge(client: redis.Redis) -> int:
    return QUARANTINE.purge(client)
