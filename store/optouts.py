"""The opt-out list's shape and how a stored opt-out hash reads back.

One hash per address (keys.OPTOUT) and a sorted set of opted-out addresses
(keys.OPTOUT_INDEX) for paging. Changes are written by the batch apply
script (store/state.py), atomically with dedup, so a redelivered STOP or
START changes nothing twice; this module is the read side, shared by the
sync store and the web process's async query API.
"""

from __future__ import annotations

import msgspec

# One STOP or START on an address's opt-out hash, by CONTRACT section 4: it applies only when newer
# than what the hash holds. The index is scored by when tspipe recorded the opt-out (NX: a repeated
# STOP keeps the first time): the dashboard counts today's, and paging by rank sees new entries only
# at the end. Shared, as a Lua function, by the batch apply script (store/state.py) and the CSV import
# (store/suppression.py), so a callback and an imported row follow one rule; erasure finds both alike.
# Returns whether it wrote, and the hash's opted_out before ('1', '0' or false).
OPTOUT_CHANGE = r"""
local function optout_change(hash, index, address, action, channel, keyword, ts, iso, now)
  local cur = redis.call('HMGET', hash, 'ts', 'opted_out')
  local prev = tonumber(cur[1])
  if prev and ts <= prev then return false, cur[2] end
  local out = (action == 'stop') and 1 or 0
  redis.call('HSET', hash, 'opted_out', out, 'channel', channel, 'keyword', keyword, 'ts', ts, 'updated_at', iso)
  if out == 1 then
    redis.call('ZADD', index, 'NX', now, address)
  else
    redis.call('ZREM', index, address)
  end
  return true, cur[2]
end
"""


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
