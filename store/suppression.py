"""The suppression list a sender uses before sending: bulk check, import from another system, export.

It is the opt-out list itself (keys.OPTOUT hashes and the keys.OPTOUT_INDEX
sorted set), not a copy: an imported opt-out is written with the fields and
the rule of the batch apply script (a change applies only when it is newer
than what is stored, CONTRACT section 4), so imports and callbacks order by
time between them, an import is idempotent, and erasure treats an imported
opt-out like any other.

Scripts take every key through KEYS; ARGV carries only values.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

import msgspec
import redis

from workers import keys

# Most addresses one bulk check may ask about: one script call, well under a millisecond of Redis time.
CHECK_MAX = 1000
# Rows per import script call: bounds how long one call blocks Redis (~5 ms per 1,000 rows).
IMPORT_CHUNK = 2000

# KEYS: the opt-out hash of each address asked about, in order.
# Returns, for each opted-out one, its 1-based position, channel, keyword and updated_at (flat).
CHECK = r"""
local out = {}
for i, k in ipairs(KEYS) do
  local v = redis.call('HMGET', k, 'opted_out', 'channel', 'keyword', 'updated_at')
  if v[1] == '1' then
    out[#out + 1] = i
    out[#out + 1] = v[2] or ''
    out[#out + 1] = v[3] or ''
    out[#out + 1] = v[4] or ''
  end
end
return out
"""

# KEYS[1]: the opted-out index, KEYS[2]: the metrics hash, KEYS[2 + i]: row i's opt-out hash.
# ARGV[1]: msgpack list of rows {address, action ('stop'|'start'), channel, keyword, ts, iso}, oldest first.
# The same rule and fields as the batch apply script's opt-out change: only a newer row applies.
# Returns {rows written, addresses opted out by them, addresses opted back in by them}.
IMPORT = r"""
local rows = cmsgpack.unpack(ARGV[1])
local written, stopped, started = 0, 0, 0
for i, r in ipairs(rows) do
  local ok = KEYS[i + 2]
  local cur = redis.call('HMGET', ok, 'ts', 'opted_out')
  local prev = tonumber(cur[1])
  if (not prev) or r.ts > prev then
    local out = (r.action == 'stop') and 1 or 0
    redis.call('HSET', ok, 'opted_out', out, 'channel', r.channel, 'keyword', r.keyword, 'ts', r.ts,
      'updated_at', r.iso)
    if out == 1 then
      redis.call('ZADD', KEYS[1], r.ts, r.address)
      if cur[2] ~= '1' then stopped = stopped + 1 end
    else
      redis.call('ZREM', KEYS[1], r.address)
      if cur[2] == '1' then started = started + 1 end
    end
    redis.call('HINCRBY', KEYS[2], 'tspipe_optout_changes_total{action="' .. r.action .. '"}', 1)
    written = written + 1
  end
end
return {written, stopped, started}
"""


class Suppressed(msgspec.Struct, frozen=True, kw_only=True):
    """One opted-out address, as the bulk check answers it."""

    address: str
    channel: str | None
    keyword: str | None
    updated_at: str | None


class ImportRow(msgspec.Struct, frozen=True, kw_only=True):
    """One opt-out change to import: what a STOP or START callback would have written."""

    address: str
    action: str  # "stop" or "start"
    channel: str
    keyword: str
    ts: float  # unix time of the change

    @property
    def iso(self) -> str:
        return iso_time(self.ts)


class ImportResult(msgspec.Struct, frozen=True, kw_only=True):
    rows: int
    written: int  # rows newer than what was stored
    opted_out: int  # addresses that were not opted out and now are
    opted_in: int  # addresses that were opted out and no longer are

    @property
    def changed(self) -> int:
        return self.opted_out + self.opted_in


def iso_time(seconds: float) -> str:
    """The `updated_at` text the apply script writes (microseconds, Z)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{int(seconds % 1 * 1e6):06d}Z"


def normalize_address(raw: str) -> str:
    """A phone number as Telesign writes it (digits only: '+1 (555) 010-0001' -> '15550100001'); an e-mail as given."""
    value = raw.strip()
    if "@" in value:
        return value
    return "".join(ch for ch in value if ch.isdigit())


_packer = msgspec.msgpack.Encoder()


def check_keys(addresses: Sequence[str]) -> list[str]:
    return [keys.OPTOUT.format(address=a) for a in addresses]


def check_answer(addresses: Sequence[str], flat: Sequence) -> list[Suppressed]:
    """The CHECK script's flat answer as Suppressed entries, in the order asked."""
    def text(value) -> str | None:
        value = value.decode() if isinstance(value, bytes) else value
        return value or None

    return [
        Suppressed(address=addresses[int(flat[i]) - 1], channel=text(flat[i + 1]), keyword=text(flat[i + 2]),
                   updated_at=text(flat[i + 3]))
        for i in range(0, len(flat), 4)
    ]


def check(client: redis.Redis, addresses: Sequence[str]) -> list[Suppressed]:
    """Which of `addresses` are opted out, in one round trip (sync; the web process uses CHECK with its async client)."""
    if not addresses:
        return []
    return check_answer(addresses, client.register_script(CHECK)(keys=check_keys(addresses)))


def import_rows(client: redis.Redis, rows: Iterable[ImportRow]) -> ImportResult:
    """Apply opt-out changes oldest first, in chunks; each row applies only if newer than what is stored."""
    ordered = sorted(rows, key=lambda r: r.ts)
    script = client.register_script(IMPORT)
    written = stopped = started = 0
    for start in range(0, len(ordered), IMPORT_CHUNK):
        chunk = ordered[start:start + IMPORT_CHUNK]
        args = [{"address": r.address, "action": r.action, "channel": r.channel, "keyword": r.keyword,
                 "ts": r.ts, "iso": r.iso} for r in chunk]
        w, s, b = script(keys=[keys.OPTOUT_INDEX, keys.METRICS, *check_keys([r.address for r in chunk])],
                         args=[_packer.encode(args)])
        written, stopped, started = written + int(w), stopped + int(s), started + int(b)
    return ImportResult(rows=len(ordered), written=written, opted_out=stopped, opted_in=started)


def export(client: redis.Redis, page: int = 2000) -> Iterable[Suppressed]:
    """Every opted-out address, oldest opt-out first, read a page (one pipeline) at a time."""
    offset = 0
    while True:
        addresses = [a.decode() for a in client.zrange(keys.OPTOUT_INDEX, offset, offset + page - 1)]
        if not addresses:
            return
        yield from check(client, addresses)
        offset += page
