"""A circuit breaker per destination, kept in Redis so every worker process shares it.

After `threshold` consecutive failures the circuit opens for `cooldown`
seconds: deliveries wait instead of hammering a receiver that is down.
When the cooldown has passed, exactly one delivery (SET NX) probes; its
success closes the circuit, its failure opens it again.
"""

from __future__ import annotations

import time

import redis

from store import keys


def wait_seconds(client: redis.Redis, name: str) -> float:
    """0 when a delivery may go now; otherwise how long to wait before asking again."""
    open_until, cooldown = client.hmget(keys.CIRCUIT.format(name=name), "open_until", "cooldown")
    if open_until is None:
        return 0.0
    remaining = float(open_until) - time.time()
    if remaining > 0:
        return remaining
    # Half-open: one probe at a time; the lock expires in case the prober dies.
    if client.set(keys.CIRCUIT_PROBE.format(name=name), "1", nx=True, ex=60):
        return 0.0
    # Someone else is probing: come back after about one cooldown rather than spinning.
    return float(cooldown or 1.0)


def record_success(client: redis.Redis, name: str) -> None:
    client.delete(keys.CIRCUIT.format(name=name), keys.CIRCUIT_PROBE.format(name=name))


def record_failure(client: redis.Redis, name: str, threshold: int, cooldown: float) -> None:
    key = keys.CIRCUIT.format(name=name)
    failures = client.hincrby(key, "failures", 1)
    if failures >= threshold:
        pipe = client.pipeline()
        pipe.hset(key, mapping={"open_until": time.time() + cooldown, "cooldown": cooldown})
        pipe.delete(keys.CIRCUIT_PROBE.format(name=name))
        pipe.expire(key, int(cooldown) + 3600)
        pipe.execute()
