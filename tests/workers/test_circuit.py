"""The Redis circuit breaker: opens after consecutive failures, lets one probe through later."""

from __future__ import annotations

import time

import redis

from workers import circuit


def test_opens_after_threshold_and_probes_once(redis_url) -> None:
    client = redis.Redis.from_url(redis_url)
    for _ in range(2):
        circuit.record_failure(client, "a", threshold=3, cooldown=0.3)
    assert circuit.wait_seconds(client, "a") == 0  # still closed
    circuit.record_failure(client, "a", threshold=3, cooldown=0.3)
    assert 0 < circuit.wait_seconds(client, "a") <= 0.3  # open: nobody calls
    assert circuit.wait_seconds(client, "b") == 0  # other destinations unaffected
    time.sleep(0.35)
    assert circuit.wait_seconds(client, "a") == 0  # half-open: this caller probes
    assert circuit.wait_seconds(client, "a") > 0  # everybody else keeps waiting
    circuit.record_success(client, "a")
    assert circuit.wait_seconds(client, "a") == 0 and circuit.wait_seconds(client, "a") == 0


def test_failed_probe_reopens(redis_url) -> None:
    client = redis.Redis.from_url(redis_url)
    for _ in range(3):
        circuit.record_failure(client, "a", threshold=3, cooldown=0.2)
    time.sleep(0.25)
    assert circuit.wait_seconds(client, "a") == 0
    circuit.record_failure(client, "a", threshold=3, cooldown=0.2)
    assert circuit.wait_seconds(client, "a") > 0.1
