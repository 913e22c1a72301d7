"""The suppression list a sender uses before sending: bulk check, import from another system, export.

It is the opt-out list itself (keys.OPTOUT hashes and the keys.OPTOUT_INDEX
sorted set), not a copy: an imported row goes through the same Lua function
as a STOP or START callback (store/optouts.OPTOUT_CHANGE: a change applies
only when it is newer than what is stored, CONTRACT section 4), so imports
and callbacks order by time between them, an import is idempotent, and
erasure treats an imported opt-out like any other.

Scripts take every key through KEYS; ARGV carries only values.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence

import hiredis
import msgspec
import redis
import redis.asyncio as aioredis

from store import keys
from store.optouts import OPTOUT_CHANGE

# Most addresses one bulk check may ask about: one command, well under a millisecond of Redis time.
CHECK_MAX = 1000
# Rows per import script call: bounds how long one call blocks Redis (~5 ms per 1,000 rows).
IMPORT_CHUNK = 2000

# KEYS[1]: the opted-out index, KEYS[2]: the metrics hash, KEYS[2 + i]: row i's opt-out hash.
# ARGV[1]: msgpack list of rows [address, action ('stop'|'start'), channel, keyword, ts, iso], oldest first;
# ARGV[2]: now (unix seconds), when the import records its opt-outs.
# Each row goes through optout_change, the function the batch apply script uses for a STOP or START.
# Returns {rows written, addresses opted out by them, addresses opted back in by them}.
IMPORT = OPTOUT_CHANGE + r"""
local rows = cmsgpack.unpack(ARGV[1])
local written, stopped, started = 0, 0, 0
local changes = {stop = 0, start = 0}
for i, r in ipairs(rows) do
  local address, action, channel, keyword, ts, iso = r[1], r[2], r[3], r[4], r[5], r[6]
  local wrote, before = optout_change(KEYS[i + 2], KEYS[1], address, action, channel, keyword, ts, iso, ARGV[2])
  if wrote then
    if action == 'stop' and before ~= '1' then stopped = stopped + 1 end
    if action == 'start' and before == '1' then started = started + 1 end
    changes[action] = changes[action] + 1
    written = written + 1
  end
end
-- Counted as the batch apply script counts them, written once per call.
for action, n in pairs(changes) do
  if n > 0 then redis.call('HINCRBY', KEYS[2], 'tspipe_optout_changes_total{action="' .. action .. '"}', n) end
end
return {written, stopped, started}
"""


class Suppressed(msgspec.Struct, frozen=True, kw_only=True):
    """One opted-out address, as the bulk check answers it (GET /v1/opt-outs/{address} has the details).

    `recorded_at` is when tspipe recorded the opt-out (the index's score, so the
    check stays one native command); the STOP's own time is the opt-out's
    `updated_at` in GET /v1/opt-outs/{address}.
    """

    address: str
    recorded_at: str | None  # None for an erased address (its opt-out kept as a keyed hash)


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
    if raw.isdigit():  # almost every address a sender checks: no copy, no scan
        return raw
    value = raw.strip()
    if "@" in value:
        return value
    return "".join(ch for ch in value if ch.isdigit())


_packer = msgspec.msgpack.Encoder()


_OPTOUT_PREFIX, _, _OPTOUT_SUFFIX = keys.OPTOUT.partition("{address}")


def optout_keys(addresses: Sequence[str]) -> list[str]:
    """keys.OPTOUT of each address (concatenated: str.format costs more, thousands of times an import)."""
    prefix, suffix = _OPTOUT_PREFIX, _OPTOUT_SUFFIX
    return [prefix + a + suffix for a in addresses]


def check_command(addresses: Sequence[str]) -> bytes:
    """ZMSCORE of the addresses on the opted-out index, packed by hiredis.

    One native command answers the whole check (Redis: ~0.2 ms for 1,000
    members). The same lookups inside a Lua script cost Redis ~2.4 ms, because
    Lua converts every argument and every reply, and redis-py's asyncio client
    spends ~3 ms of CPU packing 1,000 arguments and parsing 1,000 scores in
    Python; hiredis packs them in ~0.2 ms and parses the answer in C.
    """
    return hiredis.pack_command(("ZMSCORE", keys.OPTOUT_INDEX, *addresses))


def check_answer(addresses: Sequence[str], scores: Sequence[bytes | float | None]) -> list[Suppressed]:
    """ZMSCORE's answer (one score or nil per address) as Suppressed entries, in the order asked."""
    return [Suppressed(address=address, recorded_at=iso_time(float(score)))
            for address, score in zip(addresses, scores) if score is not None]


def check(client: redis.Redis, addresses: Sequence[str]) -> list[Suppressed]:
    """Which of `addresses` are opted out, in one round trip (sync: tests, CLI)."""
    if not addresses:
        return []
    return check_answer(addresses, client.zmscore(keys.OPTOUT_INDEX, list(addresses)))


async def check_async(client: aioredis.Redis, addresses: Sequence[str],
                      erased_digest: Callable[[str], str] | None = None) -> list[Suppressed]:
    """The web process's bulk check: packed commands on one pooled connection, one round trip.

    `erased_digest(address)` is the keyed hash under which erasure keeps an
    address's opt-out once the address itself is gone (TSPIPE_ERASURE_KEY set):
    one SMISMEMBER of keys.OPTOUT_ERASED_SET rides in the same packet. Reading
    each address's keyed record instead (a script over 2,000 keys) cost Redis
    ~20 ms per check. A digest found there counts unless the address has an
    opt-out hash of its own again (a START after the erasure decides, as GET
    /v1/opt-outs does): that is asked in a second round trip, only for such
    addresses. An erased entry has no `recorded_at`: the index forgot the address.
    """
    if not addresses:
        return []
    packed = [check_command(addresses)]
    if erased_digest is not None:
        packed.append(hiredis.pack_command(("SMISMEMBER", keys.OPTOUT_ERASED_SET, *map(erased_digest, addresses))))
    replies = await _round_trip(client, packed)
    if len(replies) == 1:
        return check_answer(addresses, replies[0])
    scores, members = replies
    erased = [index for index, (score, member) in enumerate(zip(scores, members)) if member and score is None]
    if erased:
        plain = optout_keys([addresses[index] for index in erased])
        exists = await _round_trip(client, [hiredis.pack_command(("EXISTS", key)) for key in plain])
        erased = [index for index, found in zip(erased, exists) if not found]
    erased_set = set(erased)
    return [Suppressed(address=address, recorded_at=iso_time(float(score)) if score is not None else None)
            for index, (address, score) in enumerate(zip(addresses, scores))
            if score is not None or index in erased_set]


async def _round_trip(client: aioredis.Redis, packed: list[bytes]) -> list:
    """Send pre-packed commands on one pooled connection and read every answer (one round trip)."""
    pool = client.connection_pool
    connection = await pool.get_connection()
    try:
        await connection.send_packed_command(packed)
        replies = [await connection.read_response() for _ in packed]
    except BaseException:
        await connection.disconnect()  # a half-read answer must not reach the next user of this connection
        raise
    finally:
        await pool.release(connection)
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    return replies


def import_rows(client: redis.Redis, rows: Iterable[ImportRow]) -> ImportResult:
    """Apply opt-out changes oldest first, in chunks; each row applies only if newer than what is stored."""
    ordered = sorted(rows, key=lambda r: r.ts)
    script = client.register_script(IMPORT)
    now = time.time()
    written = stopped = started = 0
    for start in range(0, len(ordered), IMPORT_CHUNK):
        chunk = ordered[start:start + IMPORT_CHUNK]
        args = [(r.address, r.action, r.channel, r.keyword, r.ts, iso_time(r.ts)) for r in chunk]
        w, s, b = script(keys=[keys.OPTOUT_INDEX, keys.METRICS, *optout_keys([r.address for r in chunk])],
                         args=[_packer.encode(args), now])
        written, stopped, started = written + int(w), stopped + int(s), started + int(b)
    return ImportResult(rows=len(ordered), written=written, opted_out=stopped, opted_in=started)


class Listed(msgspec.Struct, frozen=True, kw_only=True):
    """One opted-out address with what the list keeps about it: a row of the export."""

    address: str
    channel: str | None
    keyword: str | None
    updated_at: str | None


def export(client: redis.Redis, page: int = 2000) -> Iterable[Listed]:
    """Every opted-out address, in the order tspipe recorded them, read a page (one pipeline) at a time."""
    offset = 0
    while True:
        addresses = [a.decode() for a in client.zrange(keys.OPTOUT_INDEX, offset, offset + page - 1)]
        if not addresses:
            return
        pipe = client.pipeline(transaction=False)
        for key in optout_keys(addresses):
            pipe.hmget(key, "opted_out", "channel", "keyword", "updated_at")
        for address, (out, channel, keyword, updated_at) in zip(addresses, pipe.execute()):
            if out == b"1":
                yield Listed(address=address, channel=_text(channel), keyword=_text(keyword), updated_at=_text(updated_at))
        offset += page


def _text(value: bytes | None) -> str | None:
    return value.decode() if value else None
