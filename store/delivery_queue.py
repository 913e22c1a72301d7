"""The per-destination delivery queues in Redis: what fan-out writes and the delivery engine reads.

Storage only (no Celery, no HTTP): the keys are in workers/keys.py, the
scripts here take every key through KEYS.

At-least-once without a broker in between: the engine *claims* jobs, which
moves them into an in-flight hash with a lease (now + the destination's
timeout + a grace). It then *settles* each one (delivered, retry later, or
dead letter) in one script call per group of results. An engine killed with
jobs in flight never settles them; their leases run out and the next claim
by any engine takes them again. A job settled twice (a lease that ran out
under a slow but alive engine) is settled once: settling first removes the
job from the in-flight hash and does nothing when it is already gone.

A job is `id (32 hex chars)` followed by msgpack `[attempt, first_at, body]`:
the fixed-width id lets the scripts key the in-flight hash without decoding.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence

import msgspec
import redis

from store import keys
from store.capped_list import CAP_LIST

ID_LEN = 32


class Job(msgspec.Struct, frozen=True, array_like=True, omit_defaults=True):
    attempt: int
    first_at: float
    body: bytes
    # W3C traceparent of the fan-out span, only when tracing is on (config/tracing.py); omitted otherwise.
    traceparent: str | None = None


_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(Job).decode


def new_job(body: bytes, attempt: int = 1, first_at: float | None = None, traceparent: str | None = None) -> bytes:
    return uuid.uuid4().hex.encode() + _encode(Job(attempt, first_at or time.time(), body, traceparent))


def next_attempt(raw: bytes, job: Job) -> bytes:
    """The same job (same id) one attempt further on."""
    return raw[:ID_LEN] + _encode(Job(job.attempt + 1, job.first_at, job.body, job.traceparent))


def job_id(raw: bytes) -> str:
    return raw[:ID_LEN].decode()


def read_job(raw: bytes) -> Job:
    return _decode(raw[ID_LEN:])


# KEYS: ready, delayed, bell. ARGV: max_queued, job... Queues as many jobs as the destination's bound
# leaves room for (ready + delayed) and rings the bell; returns how many it queued. The caller
# dead-letters the rest: a destination that has been down for hours stops growing Redis.
ENQUEUE = r"""
local ready, delayed, bell = KEYS[1], KEYS[2], KEYS[3]
local room = tonumber(ARGV[1]) - redis.call('LLEN', ready) - redis.call('ZCARD', delayed)
local n = math.min(#ARGV - 1, math.max(room, 0))
for i = 2, n + 1, 1000 do
  redis.call('LPUSH', ready, unpack(ARGV, i, math.min(i + 999, n + 1)))
end
if n > 0 and redis.call('LLEN', bell) == 0 then redis.call('LPUSH', bell, '1') end
return n
"""

# KEYS: ready, delayed, inflight, leases, rate window counter. ARGV: now, lease_until, n, rate_max
# (0: no rate limit), rate_ttl. Claims up to n jobs: first those whose lease ran out (their engine
# died), then ready ones, after moving due retries to the front of ready. Returns
# {wake, limited, job...}: wake is when the earliest waiting retry or lease falls due ('' if none),
# limited is 1 when the rate window is used up.
CLAIM = r"""
local ready, delayed, inflight, leases, rate = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local now, lease_until, n, rate_max = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local limited = 0
if rate_max > 0 then
  local room = rate_max - tonumber(redis.call('GET', rate) or '0')
  if room < n then n = room; limited = 1 end
end
local out = {}
if n > 0 then
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', leases, '-inf', now, 'LIMIT', 0, n)) do
    local job = redis.call('HGET', inflight, id)
    if job then
      redis.call('ZADD', leases, lease_until, id)
      out[#out + 1] = job
    else
      redis.call('ZREM', leases, id)
    end
  end
  local due = redis.call('ZRANGEBYSCORE', delayed, '-inf', now, 'LIMIT', 0, 1000)
  if #due > 0 then
    redis.call('ZREM', delayed, unpack(due))
    redis.call('RPUSH', ready, unpack(due))
  end
  if #out < n then
    local popped = redis.call('RPOP', ready, n - #out)
    if popped then
      for _, job in ipairs(popped) do
        local id = string.sub(job, 1, 32)
        redis.call('HSET', inflight, id, job)
        redis.call('ZADD', leases, lease_until, id)
        out[#out + 1] = job
      end
    end
  end
  if rate_max > 0 and #out > 0 then
    redis.call('INCRBY', rate, #out)
    redis.call('EXPIRE', rate, ARGV[5])
  end
end
local wake = ''
local first = redis.call('ZRANGE', delayed, 0, 0, 'WITHSCORES')
if first[2] then wake = first[2] end
local lease = redis.call('ZRANGE', leases, 0, 0, 'WITHSCORES')
if lease[2] and (wake == '' or tonumber(lease[2]) < tonumber(wake)) then wake = lease[2] end
table.insert(out, 1, limited)
table.insert(out, 1, wake)
return out
"""

# KEYS: inflight, leases, delayed, dead letters, ready, metrics, dead letters' size in bytes. ARGV: destination
# name, the dead letters' cap in bytes, then groups of four: op, job id, a, b. Ops: 'ok' delivered; 'retry'
# (a = due time, b = next job); 'dead' (a = dead-letter entry); 'back' (returned unsent, to the front of ready:
# a = job). A job no longer in flight (settled already) is skipped. Counts outcomes in the metrics hash
# (tspipe_webhooks_total{destination, outcome}: delivered, retried, dead_lettered, returned). Dead letters
# are held to their cap here by store/capped_list.py's own cap_list, as every other push is: the oldest go
# first, counted in tspipe_deadletters_dropped_total. Returns the number of dead letters dropped.
SETTLE = CAP_LIST + r"""
local inflight, leases, delayed, dlq, ready, metrics, size = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local names = {ok = 'delivered', retry = 'retried', dead = 'dead_lettered', back = 'returned'}
local counts = {}
local dead_bytes = 0
for i = 3, #ARGV, 4 do
  local op, id = ARGV[i], ARGV[i + 1]
  if redis.call('HDEL', inflight, id) == 1 then
    redis.call('ZREM', leases, id)
    if op == 'retry' then
      redis.call('ZADD', delayed, ARGV[i + 2], ARGV[i + 3])
    elseif op == 'dead' then
      redis.call('LPUSH', dlq, ARGV[i + 2])
      dead_bytes = dead_bytes + #ARGV[i + 2]
    elseif op == 'back' then
      redis.call('RPUSH', ready, ARGV[i + 2])
    end
    counts[names[op]] = (counts[names[op]] or 0) + 1
  end
end
for op, n in pairs(counts) do
  redis.call('HINCRBY', metrics, 'tspipe_webhooks_total{destination="' .. ARGV[1] .. '",outcome="' .. op .. '"}', n)
end
local dropped = 0
if dead_bytes > 0 then
  dropped = cap_list(dlq, size, metrics, 'tspipe_deadletters_dropped_total', dead_bytes, math.huge, tonumber(ARGV[2]))
end
return dropped
"""


def queue_keys(name: str) -> list[str]:
    return [keys.DELIVERY_READY.format(name=name), keys.DELIVERY_DELAYED.format(name=name),
            keys.DELIVERY_BELL.format(name=name)]


def claim_keys(name: str, rate_window: int) -> list[str]:
    return [keys.DELIVERY_READY.format(name=name), keys.DELIVERY_DELAYED.format(name=name),
            keys.DELIVERY_INFLIGHT.format(name=name), keys.DELIVERY_LEASES.format(name=name),
            keys.RATE.format(name=name, window=rate_window)]


def settle_keys(name: str) -> list[str]:
    return [keys.DELIVERY_INFLIGHT.format(name=name), keys.DELIVERY_LEASES.format(name=name),
            keys.DELIVERY_DELAYED.format(name=name), keys.DEADLETTER, keys.DELIVERY_READY.format(name=name),
            keys.METRICS, keys.DEADLETTER_BYTES]


def enqueue(client: redis.Redis, batches: Sequence[tuple[str, int, list[bytes]]]) -> list[int]:
    """Queue jobs for several destinations in one round trip: (name, max_queued, jobs) each.

    Returns how many jobs each destination took; the caller dead-letters the rest (counted here in
    tspipe_webhooks_total{outcome="dead_lettered"}).
    """
    if not batches:
        return []
    script = client.register_script(ENQUEUE)
    pipe = client.pipeline(transaction=False)
    for name, max_queued, jobs in batches:
        script(keys=queue_keys(name), args=[max_queued, *jobs], client=pipe)
    taken = [int(n) for n in pipe.execute()]
    refused = [(name, len(jobs) - n) for (name, _, jobs), n in zip(batches, taken) if n < len(jobs)]
    if refused:
        # Counted as the engine counts the dead letters it makes, so the per-destination rate shows these too.
        pipe = client.pipeline(transaction=False)
        for name, n in refused:
            pipe.hincrby(keys.METRICS, f'tspipe_webhooks_total{{destination="{name}",outcome="dead_lettered"}}', n)
        pipe.execute()
    return taken


DEPTH_STATES = ("ready", "delayed", "in_flight")


def queue_depth(pipe, name: str) -> None:
    """Add a destination's three sizes to an (async or sync) pipeline, answered in DEPTH_STATES order."""
    pipe.llen(keys.DELIVERY_READY.format(name=name))
    pipe.zcard(keys.DELIVERY_DELAYED.format(name=name))
    pipe.hlen(keys.DELIVERY_INFLIGHT.format(name=name))


def depth(client: redis.Redis, name: str) -> dict[str, int]:
    """How many jobs wait (ready), wait for a retry (delayed) and are held by an engine (in_flight).

    Ready plus delayed is what `max_queued` bounds."""
    pipe = client.pipeline(transaction=False)
    queue_depth(pipe, name)
    return dict(zip(DEPTH_STATES, pipe.execute()))
