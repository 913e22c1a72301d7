"""The opt-out list's shape and how a stored opt-out hash reads back.

One hash per address (keys.OPTOUT) and a sorted set of opted-out addresses
(keys.OPTOUT_INDEX) for paging. Changes are written by the batch apply
script (store/state.py), atomically with dedup, so a redelivered STOP or
START changes nothing twice; this module is the read side, shared by the
sync store and the web process's async query API.
"""

from __future__ import annotations

import msgspec


class OptOut(msgspec.Struct, frozen=True, kw_only=True):
    address: str
    opted_out: bool
    channel: str | None
    keyword: str | None
    updated_at: str | None


def optout_from_hash(address: str, data: dict) -> OptOut:
    """Shared by the sync store and the async query API."""
    def get(name: str) -> str | None:
        value = data.get(name.encode()) if data and isinstance(next(iter(data)), bytes) else data.get(name)
        if isinstance(value, bytes):
            value = value.decode()
        return value or None

    if not data:
        return OptOut(address=address, opted_out=False, channel=None, keyword=None, updated_at=None)
    return OptOut(
        address=address,
        opted_out=get("opted_out") == "1",
        channel=get("channel"),
        keyword=get("keyword"),
        updated_at=get("updated_at"),
    )
