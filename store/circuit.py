"""A circuit breaker per destination, in Redis so every delivery engine shares it.

Every transition happens inside one Lua script (CIRCUIT), so two engines can
never interleave half of one transition with another: the earlier version
counted failures and opened the circuit in separate commands, and a success
from another process in between left it open below the threshold with a
probe lock nobody released (issue 14).

States, in one hash (keys.CIRCUIT):
- closed: no `open_until`. Deliveries go; `failures` counts consecutive
  retryable failures, and reaching `threshold` opens the circuit.
- open: `open_until` in the future. Nobody sends; `acquire` answers how long
  to wait, and the engine sleeps that long (no spinning, no attempts used).
- half-open: `open_until` passed. `acquire` hands out exactly one probe
  (`probe_until` = now + the probe's timeout, so a dead prober's lock lapses).
  The probe's outcome closes the circuit (success, or any answer that proves
  the destination is up: a 4xx) or reopens it for another cooldown (failure);
  a probe that sent nothing releases it. Every outcome clears the lock.

`gen` counts transitions. `acquire` returns it, and an outcome is applied only
when reported with the current `gen`: the results of requests sent before the
circuit opened can neither close it nor reopen it again.
"""

from __future__ import annotations

import time

import redis

from store import keys

CLOSED, WAIT, PROBE = 0, 1, 2
# Outcomes: delivered or answered (e.g. a 4xx), a retryable failure, a probe that sent nothing.
SUCCESS, FAILURE, RELEASE = "s", "f", "r"

# KEYS[1]: the circuit hash. ARGV[1]: 'acquire' or 'record', ARGV[2]: now.
# acquire: ARGV[3] probe lock seconds. Returns {mode, gen, wait seconds (string)}.
# record: ARGV[3] threshold, ARGV[4] cooldown, ARGV[5] key TTL, then pairs (gen, outcome), applied in order.
#   Returns {state ('closed'|'open'), failures, gen}.
CIRCUIT = r"""
local key, op, now = KEYS[1], ARGV[1], tonumber(ARGV[2])
local gen = tonumber(redis.call('HGET', key, 'gen') or '0')
if op == 'acquire' then
  local open_until = tonumber(redis.call('HGET', key, 'open_until') or '')
  if not open_until then return {0, gen, '0'} end
  if now < open_until then return {1, gen, tostring(open_until - now)} end
  local probing = tonumber(redis.call('HGET', key, 'probe_until') or '')
  if probing and now < probing then return {1, gen, tostring(probing - now)} end
  redis.call('HSET', key, 'probe_until', now + tonumber(ARGV[3]))
  return {2, gen, '0'}
end
local threshold, cooldown = tonumber(ARGV[3]), tonumber(ARGV[4])
for i = 6, #ARGV, 2 do
  local outcome = ARGV[i + 1]
  if tonumber(ARGV[i]) == gen then
    local open = redis.call('HEXISTS', key, 'open_until') == 1
    if outcome == 's' then
      if open then gen = gen + 1 end
      redis.call('HDEL', key, 'open_until', 'probe_until', 'failures')
    elseif outcome == 'f' then
      local failures = redis.call('HINCRBY', key, 'failures', 1)
      if open or failures >= threshold then
        gen = gen + 1
        redis.call('HSET', key, 'open_until', now + cooldown)
        redis.call('HDEL', key, 'probe_until')
      end
    else
      redis.call('HDEL', key, 'probe_until')
    end
  end
end
redis.call('HSET', key, 'gen', gen)
redis.call('EXPIRE', key, ARGV[5])
local state = 'closed'
if redis.call('HEXISTS', key, 'open_until') == 1 then state = 'open' end
return {state, tonumber(redis.call('HGET', key, 'failures') or '0'), gen}
"""


def key(name: str) -> str:
    return keys.CIRCUIT.format(name=name)


def acquire_args(now: float, probe_seconds: float) -> list:
    return ["acquire", now, probe_seconds]


def record_args(now: float, threshold: int, cooldown: float, outcomes: list[tuple[int, str]]) -> list:
    flat: list = ["record", now, threshold, cooldown, int(cooldown) + 3600]
    for gen, outcome in outcomes:
        flat += [gen, outcome]
    return flat


# The circuit's state as a /metrics gauge (not the acquire modes above): what an operator's alert compares to.
GAUGE_CLOSED, GAUGE_HALF_OPEN, GAUGE_OPEN = 0, 1, 2


def queue_state(pipe, name: str) -> None:
    """Add the read of a circuit's `open_until` to an (async or sync) pipeline; `gauge` turns the answer into a state."""
    pipe.hget(key(name), "open_until")


def gauge(open_until: bytes | str | None, now: float | None = None) -> int:
    """Closed (never opened, or closed again), open (cooling down) or half-open (cooled down: a probe may go)."""
    if open_until is None:
        return GAUGE_CLOSED
    return GAUGE_OPEN if (time.time() if now is None else now) < float(open_until) else GAUGE_HALF_OPEN


def parse_acquire(reply: list) -> tuple[int, int, float]:
    mode, gen, wait = reply
    return int(mode), int(gen), float(wait)


class Breaker:
    """Synchronous access for tools and tests; the engine runs the same script on its async client."""

    def __init__(self, client: redis.Redis, name: str, threshold: int = 5, cooldown: float = 30.0,
                 probe_seconds: float = 60.0) -> None:
        self.script = client.register_script(CIRCUIT)
        self.name, self.threshold, self.cooldown, self.probe_seconds = name, threshold, cooldown, probe_seconds

    def acquire(self, now: float | None = None) -> tuple[int, int, float]:
        """(mode, gen, wait): CLOSED or PROBE may send now with `gen`; WAIT waits `wait` seconds."""
        reply = self.script(keys=[key(self.name)], args=acquire_args(now or time.time(), self.probe_seconds))
        return parse_acquire(reply)

    def record(self, gen: int, outcome: str, now: float | None = None) -> tuple[str, int, int]:
        """Report one outcome; returns (state, failures, gen) after it."""
        state, failures, new_gen = self.script(
            keys=[key(self.name)], args=record_args(now or time.time(), self.threshold, self.cooldown, [(gen, outcome)]))
        return state.decode() if isinstance(state, bytes) else state, int(failures), int(new_gen)
