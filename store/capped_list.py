"""A Redis list capped in bytes (and optionally in entries), newest first: quarantine and dead letters.

Both keep whole payloads an operator may want to look at, so both can grow
by megabytes at a time (a 64 KB body that fails to decode, a batch of
events a destination never accepted). A count cap does not bound that, so
the list's size in bytes is kept in a counter key next to it, updated by
the same script that pushes, and the oldest entries are dropped while the
list is over its cap. Drops are counted in the metrics hash (a /metrics
counter) and returned, so the caller can warn.

Reads page through the list (LRANGE windows), never loading it whole.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import redis
import structlog

from store import keys

log = structlog.get_logger("tspipe.store")

PAGE = 500

# The Lua function every push to a capped list ends with, after its LPUSHes of `added` bytes: keeps the
# size counter (a list written before its size was counted, or whose counter erasure reset, is counted
# once) and drops the oldest entries while over a cap, counting them in the metrics hash. Shared with
# the delivery engine's settle script (store/delivery_queue.py), which pushes dead letters itself.
# Returns dropped, total bytes.
CAP_LIST = r"""
local function cap_list(list, size, metrics, counter, added, max_entries, max_bytes)
  local total
  if redis.call('EXISTS', size) == 0 then
    total = 0
    for _, v in ipairs(redis.call('LRANGE', list, 0, -1)) do total = total + #v end
    redis.call('SET', size, total)
  else
    total = tonumber(redis.call('INCRBY', size, added))
  end
  local dropped = 0
  while total > max_bytes or redis.call('LLEN', list) > max_entries do
    local old = redis.call('RPOP', list)
    if not old then break end
    total = tonumber(redis.call('DECRBY', size, #old))
    dropped = dropped + 1
  end
  if dropped > 0 then redis.call('HINCRBY', metrics, counter, dropped) end
  return dropped, total
end
"""

# KEYS: list, its size in bytes, metrics hash. ARGV: max entries, max bytes, the metrics field counting
# drops, then the entries (pushed in order, so the last is the newest). Returns {dropped, bytes}.
_PUSH = CAP_LIST + r"""
local list = KEYS[1]
local added = 0
for i = 4, #ARGV do
  redis.call('LPUSH', list, ARGV[i])
  added = added + #ARGV[i]
end
local dropped, total = cap_list(list, KEYS[2], KEYS[3], ARGV[3], added, tonumber(ARGV[1]), tonumber(ARGV[2]))
return {dropped, total}
"""

# KEYS: list, its size in bytes. ARGV: entries to remove (one occurrence each). Returns how many went.
_REMOVE = r"""
local removed = 0
for i = 1, #ARGV do
  if redis.call('LREM', KEYS[1], 1, ARGV[i]) > 0 then
    removed = removed + 1
    if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('DECRBY', KEYS[2], #ARGV[i]) end
  end
end
return removed
"""


class CappedList:
    """One capped list: `name` for messages, `key`/`size_key` in Redis, and its caps."""

    def __init__(self, name: str, key: str, size_key: str, dropped_metric: str) -> None:
        self.name = name
        self.key = key
        self.size_key = size_key
        self.dropped_metric = dropped_metric

    def push(self, client: redis.Redis, entries: Sequence[bytes], max_bytes: int,
             max_entries: int = 2**62) -> int:
        """Push entries (oldest first); drop the list's oldest while over a cap. Returns how many were dropped."""
        if not entries:
            return 0
        dropped, size = client.register_script(_PUSH)(
            keys=[self.key, self.size_key, keys.METRICS],
            args=[max_entries, max_bytes, self.dropped_metric, *entries],
        )
        if dropped:
            log.warning(f"{self.name} over its cap: oldest entries dropped", dropped=int(dropped),
                        bytes=int(size), max_bytes=max_bytes, max_entries=max_entries)
        return int(dropped)

    def remove(self, client: redis.Redis, raws: Sequence[bytes]) -> int:
        if not raws:
            return 0
        return int(client.register_script(_REMOVE)(keys=[self.key, self.size_key], args=list(raws)))

    def purge(self, client: redis.Redis) -> int:
        pipe = client.pipeline()
        pipe.llen(self.key)
        pipe.delete(self.key, self.size_key)
        return pipe.execute()[0]

    def size(self, client: redis.Redis) -> int:
        return int(client.get(self.size_key) or 0)

    def newest(self, client: redis.Redis, limit: int, offset: int = 0) -> list[bytes]:
        """One page, newest first."""
        if limit <= 0:
            return []
        return client.lrange(self.key, offset, offset + limit - 1)

    def pages(self, client: redis.Redis, oldest_first: bool = False, page: int = PAGE) -> Iterator[list[bytes]]:
        """Every entry, a page at a time (newest first, or oldest first from the list's tail)."""
        start = 0
        while True:
            if oldest_first:
                rows = client.lrange(self.key, -(start + page), -(start + 1))[::-1]
            else:
                rows = client.lrange(self.key, start, start + page - 1)
            if rows:
                yield rows
            if len(rows) < page:
                return
            start += page


QUARANTINE = CappedList("quarantine", keys.QUARANTINE, keys.QUARANTINE_BYTES, "tspipe_quarantine_dropped_total")
DEADLETTERS = CappedList("dead letters", keys.DEADLETTER, keys.DEADLETTER_BYTES, "tspipe_deadletters_dropped_total")
