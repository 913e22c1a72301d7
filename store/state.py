"""The message state store: what applying a batch of events writes, in one Lua call.

A whole batch is applied with ONE Lua call (`apply_batch`): dedup, state
merge, history, pending index, opt-outs, recent events and metrics happen
atomically per batch, in one round trip. Atomicity is what makes a batch
redelivered after a worker crash side-effect-free: an event either was fully
applied (its dedup key exists) or not at all.

Ranking (CONTRACT section 4): a message's state only moves forward.
`rank(event)` orders statuses; among equal ranks the later `occurred_at` wins.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

import msgspec
import redis

from pipeline.event import EVENT_ENCODER, Event, Outcome
from store import connection, deadletters, keys, quarantine
from store.optouts import OPTOUT_CHANGE, OptOut, optout_from_hash
from store.quarantine import QuarantineEntry

# Lag histogram buckets in seconds (received_at -> applied), Prometheus style.
LAG_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 30.0, 60.0, 300.0)


def rank(event: Event) -> int:
    """Order of precedence of a status: read > final > delivered (not final, e.g. WhatsApp 3000) > in flight.

    Read beats everything because it can only come after delivery; a final
    status beats any intermediate one; a non-final "delivered" still beats a
    "pending" that arrived late.
    """
    status = event.status
    if status.outcome is Outcome.READ:
        return 3
    if status.final:
        return 2
    if status.outcome is Outcome.DELIVERED:
        return 1
    return 0


def _ts(event: Event) -> float:
    when = event.occurred_at or event.received_at
    return when.timestamp() if when is not None else 0.0


def _iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{int(seconds % 1 * 1e6):06d}Z"


def events_metric(event: Event) -> str:
    channel = event.channel.value if event.channel else ""
    return (
        f'tspipe_events_total{{channel="{channel}",kind="{event.kind.value}",'
        f'outcome="{event.status.outcome.value}"}}'
    )


# KEYS: the dedup keys of events whose fan-out was enqueued. Marks them '2' (TTL kept), so a
# redelivered batch no longer fans them out again; a key that expired meanwhile stays absent.
_CONFIRM_FANOUT = r"""
for _, k in ipairs(KEYS) do redis.call('SET', k, '2', 'XX', 'KEEPTTL') end
return #KEYS
"""

# KEYS: none (single-node Redis; key names are built from templates passed in ARGV,
# which all come from store/keys.py).
# ARGV[1]: msgpack config map, ARGV[2]: msgpack list of event entries, ARGV[3]: the dedup mark
# for new events: '1' (fan-out pending) or '2' (nothing to fan out: already confirmed).
# Returns the 1-based positions of the entries newly applied, in batch order, and the negated
# positions of duplicates whose fan-out was never confirmed (see confirm_fanout).
_APPLY_BATCH = OPTOUT_CHANGE + r"""
local cfg = cmsgpack.unpack(ARGV[1])
local entries = cmsgpack.unpack(ARGV[2])
local function key(template, field, value)
  return (string.gsub(template, '{' .. field .. '}', function() return value end))
end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local applied = {}
local recent = {}
local hits = 0
-- Metrics are summed here and written once per batch, not once per event.
local counts = {}
local buckets = {}
for i = 1, #cfg.buckets do buckets[i] = 0 end
local lag_sum, lag_count = 0, 0
for _, e in ipairs(entries) do
  local dk = key(cfg.dedup, 'event_id', e.id)
  if not redis.call('SET', dk, ARGV[3], 'NX', 'EX', cfg.dedup_ttl) then
    hits = hits + 1
    -- '1': applied, but its fan-out was never confirmed (the worker died in between):
    -- hand it back, negated, so the caller fans it out again (receivers dedupe on webhook-id).
    if redis.call('GET', dk) == '1' then applied[#applied + 1] = -_ end
  else
    applied[#applied + 1] = _
    counts[e.metric] = (counts[e.metric] or 0) + 1
    if e.received then
      local lag = now - e.received
      if lag < 0 then lag = 0 end
      for i, le in ipairs(cfg.buckets) do
        if lag <= le then buckets[i] = buckets[i] + 1 end
      end
      lag_sum = lag_sum + lag
      lag_count = lag_count + 1
    end
    if e.ref then
      local hk = key(cfg.history, 'reference_id', e.ref)
      if redis.call('RPUSH', hk, e.hist) > cfg.history_max then
        redis.call('LTRIM', hk, -cfg.history_max, -1)
      end
      redis.call('EXPIRE', hk, cfg.state_ttl)
      local sk = key(cfg.state, 'reference_id', e.ref)
      local cur = redis.call('HMGET', sk, 'rank', 'ts')
      local cr, ct = tonumber(cur[1]), tonumber(cur[2])
      if (not cr) or e.rank > cr or (e.rank == cr and e.ts > ct) then
        redis.call('HSET', sk, 'event', e.event, 'rank', e.rank, 'ts', e.ts)
        if e.final then
          redis.call('ZREM', cfg.pending, e.ref)
        else
          redis.call('ZADD', cfg.pending, e.ts, e.ref)
        end
      end
      redis.call('EXPIRE', sk, cfg.state_ttl)
    end
    if e.optout and e.addr then
      local ok = key(cfg.optout, 'address', e.addr)
      if optout_change(ok, cfg.optout_index, e.addr, e.optout, e.channel or '', e.keyword or '', e.ts, e.iso, now) then
        redis.call('HINCRBY', cfg.metrics, 'tspipe_optout_changes_total{action="' .. e.optout .. '"}', 1)
      end
    end
    recent[#recent + 1] = e.event
  end
end
-- Only the newest recent_max events of the batch can survive the trim: push just those, in one call.
if #recent > 0 then
  local first = math.max(1, #recent - cfg.recent_max + 1)
  redis.call('LPUSH', cfg.recent, unpack(recent, first, #recent))
  redis.call('LTRIM', cfg.recent, 0, cfg.recent_max - 1)
end
if hits > 0 then redis.call('HINCRBY', cfg.metrics, 'tspipe_dedup_hits_total', hits) end
for field, n in pairs(counts) do redis.call('HINCRBY', cfg.metrics, field, n) end
if lag_count > 0 then
  for i, le in ipairs(cfg.buckets) do
    redis.call('HINCRBY', cfg.metrics, cfg.lag .. '_bucket{le="' .. cfg.labels[i] .. '"}', buckets[i])
  end
  redis.call('HINCRBY', cfg.metrics, cfg.lag .. '_bucket{le="+Inf"}', lag_count)
  redis.call('HINCRBYFLOAT', cfg.metrics, cfg.lag .. '_sum', lag_sum)
  redis.call('HINCRBY', cfg.metrics, cfg.lag .. '_count', lag_count)
end
return applied
"""

# KEYS[1]: an auto-reply's claim. ARGV[1]: the claiming task id, ARGV[2]: TTL in seconds.
# 1 when the claim is (or already was) this task's; 0 when another task holds it or the reply was sent.
_CLAIM_AUTOREPLY = r"""
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then return 1 end
return 0
"""

# KEYS[1]: an auto-reply's claim. ARGV[1]: the task id that must hold it, ARGV[2]: the new value
# (AUTOREPLY_SENT, TTL kept) or '' to delete it. Does nothing when another task holds the claim.
_SETTLE_AUTOREPLY = r"""
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '' then return redis.call('DEL', KEYS[1]) end
redis.call('SET', KEYS[1], ARGV[2], 'XX', 'KEEPTTL')
return 1
"""
# The claim's value once the reply went out (a task id is a UUID, never this).
AUTOREPLY_SENT = "sent"

_packer = msgspec.msgpack.Encoder()


class History(msgspec.Struct, frozen=True, kw_only=True):
    """One compact history line: enough to see how a message moved, without the raw body."""

    event_id: str
    kind: str
    code: int
    outcome: str
    final: bool
    channel: str | None
    occurred_at: str | None
    received_at: str | None


_json = msgspec.json.Encoder()


class Store:
    """Thin wrapper over a sync Redis client; one instance per worker process."""

    CHUNK = 1000

    def __init__(
        self,
        client: redis.Redis,
        *,
        state_ttl: int = 7 * 86400,
        dedup_ttl: int = 7 * 86400,
        history_max: int = 50,
        quarantine_max: int = 100000,
        recent_max: int = 200,
    ) -> None:
        self.client = client
        self.quarantine_max = quarantine_max
        self._apply = client.register_script(_APPLY_BATCH)
        self._confirm = client.register_script(_CONFIRM_FANOUT)
        self._claim = client.register_script(_CLAIM_AUTOREPLY)
        self._settle = client.register_script(_SETTLE_AUTOREPLY)
        self._cfg = _packer.encode(
            {
                "dedup": keys.DEDUP,
                "state": keys.STATE,
                "history": keys.HISTORY,
                "optout": keys.OPTOUT,
                "optout_index": keys.OPTOUT_INDEX,
                "pending": keys.PENDING_INDEX,
                "metrics": keys.METRICS,
                "recent": keys.RECENT_EVENTS,
                "lag": "tspipe_processing_lag_seconds",
                "buckets": list(LAG_BUCKETS),
                "labels": [str(b) for b in LAG_BUCKETS],
                "dedup_ttl": dedup_ttl,
                "state_ttl": state_ttl,
                "history_max": history_max,
                "recent_max": recent_max,
            }
        )

    @classmethod
    def from_settings(cls, settings) -> Store:
        return cls(
            connection.connect(settings.redis_url),
            state_ttl=settings.state_ttl_seconds,
            dedup_ttl=settings.dedup_ttl_seconds,
            history_max=settings.history_max,
            quarantine_max=settings.quarantine_max,
        )

    def apply_batch(self, events: Sequence[Event]) -> list[Event]:
        """Apply every event with no fan-out to follow; return the events that were new (not duplicates)."""
        return self.apply_batch_with_outbox(events, outbox=False)[0]

    def apply_batch_with_outbox(self, events: Sequence[Event], outbox: bool = True) -> tuple[list[Event], list[Event]]:
        """Apply every event; return (new events, duplicates whose fan-out was never confirmed).

        The dedup key doubles as an outbox flag: '1' from apply until
        confirm_fanout() sets '2'. A worker killed between the two leaves '1',
        and the redelivered batch fans those events out again instead of
        dropping their webhooks as duplicates. With outbox=False (no fan-out
        targets) new events are marked confirmed at once and no confirm is needed.
        """
        if not events:
            return [], []
        entries = []
        for ev in events:
            ts = _ts(ev)
            entry = {
                "id": ev.event_id,
                "metric": events_metric(ev),
                "event": EVENT_ENCODER.encode(ev).decode(),
                "rank": rank(ev),
                "ts": ts,
                "final": ev.status.final,
            }
            if ev.received_at is not None:
                entry["received"] = ev.received_at.timestamp()
            if ev.reference_id:
                entry["ref"] = ev.reference_id
                entry["hist"] = _json.encode(
                    History(
                        event_id=ev.event_id,
                        kind=ev.kind.value,
                        code=ev.status.code,
                        outcome=ev.status.outcome.value,
                        final=ev.status.final,
                        channel=ev.channel.value if ev.channel else None,
                        occurred_at=ev.occurred_at.isoformat() if ev.occurred_at else None,
                        received_at=ev.received_at.isoformat() if ev.received_at else None,
                    )
                ).decode()
            action = ev.action.value if ev.action is not None else None
            if action in ("stop", "start") and ev.address:
                entry.update(
                    optout=action,
                    addr=ev.address,
                    channel=ev.channel.value if ev.channel else None,
                    keyword=ev.keyword,
                    iso=_iso(ts),
                )
            entries.append(entry)
        # Chunks bound how long one script blocks Redis (about 20 ms per 1,000
        # events), while a normal batch (TSPIPE_BATCH_MAX_RECORDS=500) stays one call.
        new: list[Event] = []
        unconfirmed: list[Event] = []
        for start in range(0, len(entries), self.CHUNK):
            applied = self._apply(args=[self._cfg, _packer.encode(entries[start:start + self.CHUNK]), "1" if outbox else "2"])
            for position in map(int, applied):
                (new if position > 0 else unconfirmed).append(events[start + abs(position) - 1])
        return new, unconfirmed

    def confirm_fanout(self, events: Sequence[Event]) -> None:
        """Mark events as fanned out (dedup value '2', TTL kept), in one script call."""
        if not events:
            return
        self._confirm(keys=[keys.DEDUP.format(event_id=e.event_id) for e in events])

    # --- quarantine ---

    def quarantine(self, entries: Iterable[QuarantineEntry]) -> int:
        return quarantine.add(self.client, entries, self.quarantine_max)

    def quarantined(self, limit: int = 100) -> list[QuarantineEntry]:
        return quarantine.newest(self.client, limit)

    def purge_quarantine(self) -> int:
        return quarantine.purge(self.client)

    # --- reads (tests, CLI) ---

    def state(self, reference_id: str) -> Event | None:
        raw = self.client.hget(keys.STATE.format(reference_id=reference_id), "event")
        return msgspec.json.decode(raw, type=Event) if raw else None

    def history(self, reference_id: str) -> list[History]:
        rows = self.client.lrange(keys.HISTORY.format(reference_id=reference_id), 0, -1)
        return [msgspec.json.decode(r, type=History) for r in rows]

    def optout(self, address: str) -> OptOut:
        return optout_from_hash(address, self.client.hgetall(keys.OPTOUT.format(address=address)))

    def claim_autoreply(self, event_id: str, claimer: str, ttl: int) -> bool:
        """First claimer wins; the same claimer (a retried or redelivered task keeps its id) may claim again.

        The claim's value is the task id while the reply is being sent, then
        AUTOREPLY_SENT (see autoreply_sent), which no task id equals: a task
        redelivered after its reply went out does not send it twice.
        """
        return bool(self._claim(keys=[keys.AUTOREPLY_CLAIM.format(event_id=event_id)], args=[claimer, ttl]))

    def autoreply_sent(self, event_id: str, claimer: str) -> None:
        """The reply went out: no later task may claim it, not even a replay of its dead letter."""
        self._settle(keys=[keys.AUTOREPLY_CLAIM.format(event_id=event_id)], args=[claimer, AUTOREPLY_SENT])

    def release_autoreply(self, event_id: str, claimer: str) -> None:
        """The reply gave up and was dead-lettered unsent: free the claim so `tspipe dlq replay` can send it."""
        self._settle(keys=[keys.AUTOREPLY_CLAIM.format(event_id=event_id)], args=[claimer, ""])

    def dead_letter(self, entry: dict) -> None:
        deadletters.add_raw(self.client, _json.encode(entry))
