"""The batch journal: a queued batch is never lost between Redis and a worker.

Celery's Redis transport pops a message (BRPOP) and only then records it as
unacknowledged (a second round trip). A worker killed between the two loses
the message: it is in neither the queue nor `unacked`, so the visibility
timeout cannot bring it back (celery/celery#7950, celery/kombu#305). A
failed task is acknowledged too. So the ingress writes each batch message to
the journal in the same transaction as its LPUSH, the worker forgets it once
the batch is applied, and a beat task re-queues any journalled message that
is past due and sits neither in the queue nor in `unacked`. A batch applied
twice is harmless: events are deduplicated by their body.

A batch re-queued max_requeues times and still not applied (it crashes or
fails every worker that takes it) moves to keys.JOURNAL_STUCK; the sweep task
moves its callbacks on into the quarantine (capped in bytes, where `tspipe
quarantine list|replay` finds them), so the stuck list holds a batch only
between two sweeps.
"""

from __future__ import annotations

import base64
import json
import time

import redis

from store import keys, serialization

# Times a lost batch is queued again before it counts as failing every worker (then: quarantined).
MAX_REQUEUES = 5

# KEYS: journal, due, requeues, stuck, queue, unacked. ARGV: now, grace, limit, max_requeues.
# Returns {requeued, still_in_flight, stuck}.
_SWEEP = r"""
local journal, due, requeues, stuck, queue, unacked = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local now, grace, limit, max_requeues = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local requeued, in_flight, gave_up = 0, 0, 0
for _, id in ipairs(redis.call('ZRANGEBYSCORE', due, '-inf', now, 'LIMIT', 0, limit)) do
  local message = redis.call('HGET', journal, id)
  if not message then
    redis.call('ZREM', due, id)
  else
    local ok, decoded = pcall(cjson.decode, message)
    local tag = ok and decoded.properties and decoded.properties.delivery_tag
    if (tag and redis.call('HEXISTS', unacked, tag) == 1) or redis.call('LPOS', queue, message) then
      in_flight = in_flight + 1
      redis.call('ZADD', due, now + grace, id)
    elseif redis.call('HINCRBY', requeues, id, 1) > max_requeues then
      gave_up = gave_up + 1
      redis.call('LPUSH', stuck, message)
      redis.call('HDEL', journal, id)
      redis.call('HDEL', requeues, id)
      redis.call('ZREM', due, id)
    else
      requeued = requeued + 1
      redis.call('LPUSH', queue, message)
      redis.call('ZADD', due, now + grace, id)
    end
  end
end
return {requeued, in_flight, gave_up}
"""


# KEYS: queue, journal, due. ARGV: message, task id, due time. The LPUSH that queues a batch and
# its journal entry, atomically: one round trip, as cheap for the ingress as the bare LPUSH. A task
# id already journalled is not queued again (a spool replay of a write whose answer was lost).
ENQUEUE = r"""
if redis.call('HEXISTS', KEYS[2], ARGV[2]) == 1 then return 0 end
redis.call('LPUSH', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[2])
return 1
"""


def enqueue_keys(queue: str) -> list[str]:
    return [queue, keys.JOURNAL, keys.JOURNAL_DUE]


def enqueue_args(task_id: str, message: bytes, grace: float, now: float | None = None) -> list[object]:
    return [message, task_id, (time.time() if now is None else now) + grace]


def enqueue(client: redis.Redis, queue: str, task_id: str, message: bytes, grace: float,
            now: float | None = None) -> bool:
    """Queue one batch message and journal it, in one script call (sync callers: the CLI, tests; the
    ingress keeps its own registered scripts). False when that task id is journalled already."""
    return bool(client.register_script(ENQUEUE)(enqueue_keys(queue), enqueue_args(task_id, message, grace, now)))


def forget(client: redis.Redis, task_id: str) -> None:
    """The batch is applied: nothing to re-queue for it any more."""
    pipe = client.pipeline(transaction=False)
    pipe.hdel(keys.JOURNAL, task_id)
    pipe.zrem(keys.JOURNAL_DUE, task_id)
    pipe.hdel(keys.JOURNAL_REQUEUES, task_id)
    pipe.execute()


class Sweep:
    """Re-queues journalled batches that were lost in transit; see the module docstring."""

    def __init__(self, client: redis.Redis, queue: str, grace: float = 30.0, limit: int = 500,
                 max_requeues: int = MAX_REQUEUES) -> None:
        self.client = client
        self.queue = queue
        self.grace = grace
        self.limit = limit
        self.max_requeues = max_requeues
        self._script = client.register_script(_SWEEP)

    def run(self, now: float | None = None) -> tuple[int, int, int]:
        """(re-queued, still queued or in flight, given up) among the batches past due."""
        requeued, in_flight, gave_up = self._script(
            keys=[keys.JOURNAL, keys.JOURNAL_DUE, keys.JOURNAL_REQUEUES, keys.JOURNAL_STUCK, self.queue,
                  keys.KOMBU_UNACKED],
            args=[time.time() if now is None else now, self.grace, self.limit, self.max_requeues],
        )
        return int(requeued), int(in_flight), int(gave_up)


def batch_blob(message: bytes) -> bytes:
    """The batch a queued `tspipe.ingest_batch` message carries (kombu's JSON envelope, base64 body,
    msgpack [args, kwargs, embed]: ingest/task_message.py). ValueError when it is not one."""
    try:
        args = serialization.loads(base64.b64decode(json.loads(message)["body"]))[0]
        blob = args[0]
    except Exception as exc:  # any shape error means "not one of ours"
        raise ValueError(f"not a batch message: {exc!r}") from None
    if not isinstance(blob, bytes):
        raise ValueError("not a batch message: its argument is not bytes")
    return blob


def stuck(client: redis.Redis, limit: int = 100) -> list[bytes]:
    """The oldest batches given up on (at most `limit`), oldest first."""
    return list(reversed(client.lrange(keys.JOURNAL_STUCK, -limit, -1)))


def release_stuck(client: redis.Redis, message: bytes) -> None:
    """A stuck batch dealt with (its callbacks quarantined): off the stuck list."""
    client.lrem(keys.JOURNAL_STUCK, 1, message)
