"""Applying a batch of events to the hot state, in one Lua call per batch.

A whole batch is applied with ONE script call (`apply_batch`): dedup, state
merge, history, pending index, opt-outs, recent events and metrics happen
atomically per batch, in one round trip. Atomicity is what makes a batch
redelivered after a worker crash side-effect-free: an event either was fully
applied (its fingerprint is in its message's record) or not at all. The
script takes every key through KEYS; names are built here, from store/keys.py.

Ranking (CONTRACT section 4): a message's state only moves forward.
`rank()` (store/message.py) orders statuses; among equal ranks the later `occurred_at` wins.
What a message's record holds, and why it is that small, is in store/message.py.

Lifetimes (README, "How long Redis keeps things"): a message's record lives
STATE_TTL_SECONDS after its last event; dedup keys of events without a
reference id and fan-out outbox keys DEDUP_TTL_SECONDS; the pending index
drops a message once the status API's 12 h window has passed.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import NamedTuple

import msgspec
import redis

from pipeline.event import Event
from store import connection, deadletters, keys, message, quarantine
from store.message import (CHANNEL_INDEX, KIND_INDEX, OUTCOME_INDEX, HistoryItem, MessageState, Transaction,
                           fingerprint, rank, stored_description)
from store.optouts import OPTOUT_CHANGE, OptOut, optout_from_hash
from store.quarantine import QuarantineEntry

# Three days: delivery reports can trail a message by the carrier's validity period (72 h at most
# networks), read receipts come when the user opens the message, and the status API answers for 12 h.
# After that the archive answers for the message.
STATE_TTL_SECONDS = 3 * 86400
# A day: Telesign retries within ~40 s and a lost batch is redelivered within minutes (visibility
# timeout 300 s, journal grace 30 s); a day leaves room for a spool drained after a long outage.
DEDUP_TTL_SECONDS = 86400
# Telesign's status API answers for 12 hours: a message still pending after that cannot be reconciled.
PENDING_WINDOW_SECONDS = 12 * 3600

# Lag histogram buckets in seconds (received_at -> applied), Prometheus style.
LAG_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 30.0, 60.0, 300.0)

__all__ = ["Store", "Applied", "QuarantineEntry", "rank", "LAG_BUCKETS", "STATE_TTL_SECONDS",
           "DEDUP_TTL_SECONDS", "PENDING_WINDOW_SECONDS"]


def _ts(event: Event) -> float:
    when = event.occurred_at or event.received_at
    return when.timestamp() if when is not None else 0.0


def _iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{int(seconds % 1 * 1e6):06d}Z"


def _metric(kind: str, channel: str | None, outcome: str) -> str:
    """The events counter's series for these labels, built once per combination."""
    series = _METRICS[(kind, channel, outcome)] = (
        f'tspipe_events_total{{channel="{channel or ""}",kind="{kind}",outcome="{outcome}"}}'
    )
    return series


_METRICS: dict[tuple[str, str | None, str], str] = {}


def events_metric(event: Event) -> str:
    channel = event.channel._value_ if event.channel is not None else None
    return _metric(event.kind._value_, channel, event.status.outcome._value_)


# KEYS[1..4]: metrics, recent, pending index, opt-out index; then the keys entries name by their
# position in KEYS. ARGV[1]: msgpack config, ARGV[2]: msgpack list of entries, each a positional
# array (see ENTRY below; arrays, not maps: Lua builds them with no key hashing). Returns, per entry
# newly applied, 2*position + current (1 when it became the message's current state), and, negated,
# the same for duplicates whose fan-out was never confirmed.
_APPLY_BATCH = OPTOUT_CHANGE + r"""
local MSG, DEDUP, OUTBOX, RANK, TS, FINAL, METRIC, RECENT, RECEIVED, REF, FP, CODE, OUTCOME, KIND, CHANNEL, HAS_OCC, DESC, OPTOUT, ACTION, ADDR, CHANNEL_NAME, KEYWORD, ISO = 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23
local K_METRICS, K_RECENT, K_PENDING, K_OPTOUTS = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local cfg = cmsgpack.unpack(ARGV[1])
local entries = cmsgpack.unpack(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local records, dirty, fresh = {}, {}, {}
local out, recent, counts, buckets = {}, {}, {}, {}
local hits, lag_sum, lag_count = 0, 0, 0
for i = 1, #cfg.buckets do buckets[i] = 0 end
-- Each message is read once and written once per batch, however many of its events the batch holds.
local function record(k)
  local m = records[k]
  if m == nil then
    local raw = redis.call('GET', KEYS[k])
    m = raw and cmsgpack.unpack(raw) or false
    records[k] = m
  end
  return m
end
for pos, e in ipairs(entries) do
  local new, current = true, true
  if e[MSG] then
    local m = record(e[MSG])
    if m then
      for _, h in ipairs(m[10]) do
        if h[1] == e[FP] then new = false break end
      end
    end
    if new then
      if not m then
        m = {e[RANK], e[TS], e[CODE], e[OUTCOME], e[FINAL], e[KIND], e[CHANNEL], e[HAS_OCC], e[DESC], {}}
        records[e[MSG]] = m
      elseif e[RANK] > m[1] or (e[RANK] == m[1] and e[TS] > m[2]) then
        m[1], m[2], m[3], m[4], m[5], m[6], m[7], m[8], m[9] = e[RANK], e[TS], e[CODE], e[OUTCOME], e[FINAL], e[KIND], e[CHANNEL], e[HAS_OCC], e[DESC]
      else
        current = false
      end
      local h = m[10]
      h[#h + 1] = {e[FP], e[CODE], e[OUTCOME], e[HAS_OCC] and e[TS] or false}
      if #h > cfg.history_max then table.remove(h, 1) end
      dirty[e[MSG]] = true
      if current then
        if e[FINAL] then redis.call('ZREM', K_PENDING, e[REF]) else redis.call('ZADD', K_PENDING, now, e[REF]) end
      end
    end
  elseif not redis.call('SET', KEYS[e[DEDUP]], '1', 'NX', 'EX', cfg.dedup_ttl) then
    new = false
  end
  if not new then
    hits = hits + 1
    -- Applied before, but its fan-out was never confirmed (the worker died in between): hand it
    -- back, negated, so the caller fans it out again (receivers dedupe on webhook-id).
    if e[OUTBOX] and not fresh[e[OUTBOX]] then
      local flag = redis.call('GET', KEYS[e[OUTBOX]])
      if flag then out[#out + 1] = -(pos * 2 + (flag == 'c' and 1 or 0)) end
    end
  else
    out[#out + 1] = pos * 2 + (current and 1 or 0)
    if e[OUTBOX] then
      redis.call('SET', KEYS[e[OUTBOX]], current and 'c' or 's', 'EX', cfg.dedup_ttl)
      fresh[e[OUTBOX]] = true
    end
    counts[e[METRIC]] = (counts[e[METRIC]] or 0) + 1
    if e[RECEIVED] then
      local lag = now - e[RECEIVED]
      if lag < 0 then lag = 0 end
      for i, le in ipairs(cfg.buckets) do
        if lag <= le then buckets[i] = buckets[i] + 1 end
      end
      lag_sum = lag_sum + lag
      lag_count = lag_count + 1
    end
    if e[OPTOUT] then
      if optout_change(KEYS[e[OPTOUT]], K_OPTOUTS, e[ADDR], e[ACTION], e[CHANNEL_NAME] or '', e[KEYWORD] or '',
                       e[TS], e[ISO], now) then
        redis.call('HINCRBY', K_METRICS, 'tspipe_optout_changes_total{action="' .. e[ACTION] .. '"}', 1)
      end
    end
    recent[#recent + 1] = e[RECENT]
  end
end
for k in pairs(dirty) do
  redis.call('SET', KEYS[k], cmsgpack.pack(records[k]), 'EX', cfg.state_ttl)
end
-- The reconciliation window has passed for these (or their state expired): they leave the index.
redis.call('ZREMRANGEBYSCORE', K_PENDING, '-inf', now - cfg.pending_window)
-- Only the newest recent_max events of the batch can survive the trim: push just those, in one call.
if #recent > 0 then
  local first = math.max(1, #recent - cfg.recent_max + 1)
  redis.call('LPUSH', K_RECENT, unpack(recent, first, #recent))
  redis.call('LTRIM', K_RECENT, 0, cfg.recent_max - 1)
end
if hits > 0 then redis.call('HINCRBY', K_METRICS, 'tspipe_dedup_hits_total', hits) end
for field, n in pairs(counts) do redis.call('HINCRBY', K_METRICS, field, n) end
if lag_count > 0 then
  for i, le in ipairs(cfg.buckets) do
    redis.call('HINCRBY', K_METRICS, cfg.lag .. '_bucket{le="' .. cfg.labels[i] .. '"}', buckets[i])
  end
  redis.call('HINCRBY', K_METRICS, cfg.lag .. '_bucket{le="+Inf"}', lag_count)
  redis.call('HINCRBYFLOAT', K_METRICS, cfg.lag .. '_sum', lag_sum)
  redis.call('HINCRBY', K_METRICS, cfg.lag .. '_count', lag_count)
end
return out
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
_json = msgspec.json.Encoder()


class _RecentStatus(msgspec.Struct):
    code: int
    outcome: str


class _Recent(msgspec.Struct):
    """What the dashboard shows of a recent event: no address, no text, no raw body."""

    event_id: str
    reference_id: str | None
    kind: str
    channel: str | None
    status: _RecentStatus
    action: str | None
    occurred_at: datetime | None
    received_at: datetime | None


class Applied(NamedTuple):
    """What applying a batch did: new events, duplicates to fan out again, and which of both are current."""

    new: list[Event]
    unconfirmed: list[Event]
    current: set[str]  # event ids that became (or, for unconfirmed ones, became then) their message's state


class Store:
    """Thin wrapper over a sync Redis client; one instance per worker process."""

    CHUNK = 1000

    def __init__(
        self,
        client: redis.Redis,
        *,
        state_ttl: int = STATE_TTL_SECONDS,
        dedup_ttl: int = DEDUP_TTL_SECONDS,
        history_max: int = 50,
        quarantine_max: int = 100000,
        quarantine_max_bytes: int = quarantine.MAX_BYTES,
        recent_max: int = 200,
    ) -> None:
        self.client = client
        self.quarantine_max = quarantine_max
        self.quarantine_max_bytes = quarantine_max_bytes
        self._apply = client.register_script(_APPLY_BATCH)
        self._claim = client.register_script(_CLAIM_AUTOREPLY)
        self._settle = client.register_script(_SETTLE_AUTOREPLY)
        self._fixed_keys = [keys.METRICS, keys.RECENT_EVENTS, keys.PENDING_INDEX, keys.OPTOUT_INDEX]
        self._cfg = _packer.encode(
            {
                "lag": "tspipe_processing_lag_seconds",
                "buckets": list(LAG_BUCKETS),
                "labels": [str(b) for b in LAG_BUCKETS],
                "dedup_ttl": dedup_ttl,
                "state_ttl": state_ttl,
                "history_max": history_max,
                "recent_max": recent_max,
                "pending_window": min(PENDING_WINDOW_SECONDS, state_ttl),
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
            quarantine_max_bytes=settings.quarantine_max_bytes,
        )

    def apply_batch(self, events: Sequence[Event]) -> list[Event]:
        """Apply every event with no fan-out to follow; return the events that were new (not duplicates)."""
        return self.apply_batch_with_outbox(events, outbox=False).new

    def apply_batch_with_outbox(self, events: Sequence[Event], outbox: bool = True) -> Applied:
        """Apply every event; return the new events, the duplicates whose fan-out was never confirmed,
        and which of them are their message's current state.

        With outbox=True each new event gets an outbox key until confirm_fanout()
        deletes it. A worker killed between the two leaves the key, and the
        redelivered batch fans those events out again instead of dropping
        their webhooks as duplicates. With outbox=False (no fan-out targets)
        there is nothing to confirm.
        """
        if not events:
            return Applied([], [], set())
        result = Applied([], [], set())
        # Chunks bound how long one script blocks Redis (about 10 ms per 1,000
        # events), while a normal batch (TSPIPE_BATCH_MAX_RECORDS=500) stays one call.
        for start in range(0, len(events), self.CHUNK):
            chunk = events[start:start + self.CHUNK]
            script_keys, entries = self._entries(chunk, outbox)
            for value in self._apply(keys=script_keys, args=[self._cfg, _packer.encode(entries)]):
                value = int(value)
                position, current = divmod(abs(value), 2)
                event = chunk[position - 1]
                (result.new if value > 0 else result.unconfirmed).append(event)
                if current:
                    result.current.add(event.event_id)
        return result

    def _entries(self, events: Sequence[Event], outbox: bool) -> tuple[list[str], list[list]]:
        """The script's KEYS and one positional entry per event (see ENTRY) naming its keys by position in KEYS.

        This runs for every callback: enum values are read through `_value_`
        (the `.value` property is a Python-level descriptor, ~0.4 us a read)
        and the metric series name is built once per (kind, channel, outcome).
        """
        script_keys = list(self._fixed_keys)
        positions: dict[str, int] = {}

        def key(name: str) -> int:
            index = positions.get(name)
            if index is None:
                script_keys.append(name)
                index = positions[name] = len(script_keys)
            return index

        entries = []
        for ev in events:
            ts = _ts(ev)
            status = ev.status
            kind = ev.kind._value_
            channel = ev.channel._value_ if ev.channel is not None else None
            outcome = status.outcome._value_
            action = ev.action._value_ if ev.action is not None else None
            metric = _METRICS.get((kind, channel, outcome)) or _metric(kind, channel, outcome)
            recent = _json.encode(_Recent(
                ev.event_id, ev.reference_id, kind, channel, _RecentStatus(status.code, outcome), action,
                ev.occurred_at, ev.received_at,
            )).decode()  # text: Redis's Lua msgpack has no bin type
            received = ev.received_at.timestamp() if ev.received_at is not None else False
            # ENTRY: MSG, DEDUP, OUTBOX, RANK, TS, FINAL, METRIC, RECENT, RECEIVED, REF, FP, CODE, OUTCOME,
            # KIND, CHANNEL, HAS_OCC, DESC, then for an opt-out change: OPTOUT, ACTION, ADDR, CHANNEL_NAME, KEYWORD, ISO.
            outbox_key = key(keys.OUTBOX.format(event_id=ev.event_id)) if outbox else False
            reference = ev.reference_id
            if reference:
                entry = [key(keys.MESSAGE.format(reference_id=reference)), False, outbox_key, rank(outcome, status.final), ts,
                         status.final, metric, recent, received, reference, fingerprint(ev.event_id), status.code,
                         OUTCOME_INDEX[outcome], KIND_INDEX[kind],
                         CHANNEL_INDEX[channel] if channel is not None else False, ev.occurred_at is not None,
                         stored_description(status.description, status.code, channel)]
            else:
                entry = [False, key(keys.DEDUP.format(event_id=ev.event_id)), outbox_key, rank(outcome, status.final), ts,
                         status.final, metric, recent, received]
                entry += [False] * 8
            if action == "stop" or action == "start":
                address = ev.address
                if address:
                    entry += [key(keys.OPTOUT.format(address=address)), action, address, channel, ev.keyword, _iso(ts)]
            entries.append(entry)
        return script_keys, entries

    def confirm_fanout(self, events: Sequence[Event]) -> None:
        """The events' fan-out is enqueued: their outbox keys go, in one command."""
        if events:
            self.client.delete(*[keys.OUTBOX.format(event_id=e.event_id) for e in events])

    # --- quarantine ---

    def quarantine(self, entries: Iterable[QuarantineEntry]) -> int:
        return quarantine.add(self.client, entries, self.quarantine_max, self.quarantine_max_bytes)

    def quarantined(self, limit: int = 100, offset: int = 0) -> list[QuarantineEntry]:
        return quarantine.newest(self.client, limit, offset)

    def purge_quarantine(self) -> int:
        return quarantine.purge(self.client)

    # --- reads (query API, tests, CLI) ---

    def transaction(self, reference_id: str) -> Transaction | None:
        return message.read(self.client, reference_id)

    def state(self, reference_id: str) -> MessageState | None:
        found = message.read(self.client, reference_id)
        return found.state if found else None

    def history(self, reference_id: str) -> list[HistoryItem]:
        found = message.read(self.client, reference_id)
        return found.history if found else []

    def seen(self, events: Sequence[Event]) -> list[bool]:
        """Whether each event is recorded as applied (in its message's dedup set, or its own dedup key)."""
        pipe = self.client.pipeline(transaction=False)
        for ev in events:
            if ev.reference_id:
                pipe.get(keys.MESSAGE.format(reference_id=ev.reference_id))
            else:
                pipe.exists(keys.DEDUP.format(event_id=ev.event_id))
        found = []
        for ev, answer in zip(events, pipe.execute()):
            if ev.reference_id:
                found.append(bool(answer) and fingerprint(ev.event_id) in message.fingerprints(answer))
            else:
                found.append(bool(answer))
        return found

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
