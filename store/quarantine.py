"""Quarantine storage: callback bodies that did not decode, with their reason.

One Redis list (keys.QUARANTINE, newest first) of JSON entries, capped, so
an operator can check a decoder fix against the real payloads that failed
(`tspipe quarantine`). Written once per batch in one pipeline.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec
import redis

from store import keys


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


def add(client: redis.Redis, entries: Iterable[QuarantineEntry], max_entries: int) -> int:
    """Keep bodies that failed to decode, newest first, capped; one pipeline for the batch."""
    entries = list(entries)
    if not entries:
        return 0
    pipe = client.pipeline(transaction=False)
    pipe.lpush(keys.QUARANTINE, *[_ENCODER.encode(e) for e in entries])
    pipe.ltrim(keys.QUARANTINE, 0, max_entries - 1)
    pipe.hincrby(keys.METRICS, "tspipe_quarantined_total", len(entries))
    pipe.execute()
    return len(entries)


def newest(client: redis.Redis, limit: int = 100) -> list[QuarantineEntry]:
    return [_DECODER.decode(raw) for raw in client.lrange(keys.QUARANTINE, 0, limit - 1)]


def purge(client: redis.Redis) -> int:
    pipe = client.pipeline()
    pipe.llen(keys.QUARANTINE)
    pipe.delete(keys.QUARANTINE)
    return pipe.execute()[0]
