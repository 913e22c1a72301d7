"""The Redis circuit breaker (one Lua script per transition), driven by two real processes in a fixed order."""

from __future__ import annotations

import multiprocessing

import redis

from store import circuit
from store.circuit import CLOSED, FAILURE, PROBE, RELEASE, SUCCESS, WAIT, Breaker


def _serve(url: str, conn) -> None:
    """A child process: runs the breaker operations its parent sends, answers each one."""
    breaker = Breaker(redis.Redis.from_url(url), "b", threshold=3, cooldown=10.0, probe_seconds=5.0)
    while True:
        op = conn.recv()
        if op is None:
            return
        name, *args = op
        conn.send(getattr(breaker, name)(*args))


class Process:
    def __init__(self, url: str) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(url, child), daemon=True)
        self.proc.start()

    def acquire(self, now: float) -> tuple[int, int, float]:
        self.conn.send(("acquire", now))
        return self.conn.recv()

    def record(self, gen: int, outcome: str, now: float) -> tuple[str, int, int]:
        self.conn.send(("record", gen, outcome, now))
        return self.conn.recv()

    def close(self) -> None:
        self.conn.send(None)
        self.proc.join(10)


def test_two_processes_interleave_success_and_failure(redis_url) -> None:
    a, b = Process(redis_url), Process(redis_url)
    try:
        assert a.acquire(100)[:2] == (CLOSED, 0) and b.acquire(100)[:2] == (CLOSED, 0)
        a.record(0, FAILURE, 100)
        assert a.record(0, FAILURE, 100) == ("closed", 2, 0)
        assert b.record(0, SUCCESS, 100) == ("closed", 0, 0)  # consecutive failures only
        a.record(0, FAILURE, 101)
        a.record(0, FAILURE, 101)
        # The third failure opens the circuit, from the other process: one script, no half-done transition.
        assert b.record(0, FAILURE, 101) == ("open", 3, 1)
        # The race of issue 14: a success from a request sent before the circuit opened used to delete
        # the circuit between "failures reached the threshold" and "open it". Now it is stale and ignored.
        assert b.record(0, SUCCESS, 101) == ("open", 3, 1)
        assert a.record(0, FAILURE, 102) == ("open", 3, 1)
        mode, _, wait = a.acquire(105)
        assert mode == WAIT and 5.9 < wait <= 6.0  # open until 111: wait, don't spin
        assert a.acquire(111)[:2] == (PROBE, 1)  # half-open: one probe
        mode, _, wait = b.acquire(111)
        assert mode == WAIT and 4.9 < wait <= 5.0  # the other waits for the probe, at most its lock
        assert b.record(0, SUCCESS, 111) == ("open", 3, 1)  # stale again
        assert a.record(1, FAILURE, 112) == ("open", 4, 2)  # the failed probe reopens and releases its lock
        assert b.acquire(115)[0] == WAIT
        assert b.acquire(122)[:2] == (PROBE, 2)
        assert a.acquire(122)[0] == WAIT
        # A 4xx answer to the probe: the destination is up. It closes the circuit and frees the lock.
        assert b.record(2, SUCCESS, 122) == ("closed", 0, 3)
        assert a.acquire(122)[:2] == (CLOSED, 3) and b.acquire(122)[:2] == (CLOSED, 3)
    finally:
        a.close()
        b.close()


def test_a_probe_that_sent_nothing_releases_its_lock(redis_url) -> None:
    breaker = Breaker(redis.Redis.from_url(redis_url), "r", threshold=1, cooldown=1.0, probe_seconds=60.0)
    assert breaker.record(0, FAILURE, 10) == ("open", 1, 1)
    assert breaker.acquire(12)[:2] == (PROBE, 1)
    assert breaker.acquire(12)[0] == WAIT
    assert breaker.record(1, RELEASE, 12) == ("open", 1, 1)
    assert breaker.acquire(12)[:2] == (PROBE, 1)


def test_a_dead_probers_lock_lapses(redis_url) -> None:
    breaker = Breaker(redis.Redis.from_url(redis_url), "d", threshold=1, cooldown=1.0, probe_seconds=5.0)
    breaker.record(0, FAILURE, 10)
    assert breaker.acquire(11)[0] == PROBE
    assert breaker.acquire(15.9)[0] == WAIT
    assert breaker.acquire(16.1)[0] == PROBE


def test_circuits_are_per_destination(redis_url) -> None:
    client = redis.Redis.from_url(redis_url)
    Breaker(client, "x", threshold=1).record(0, FAILURE)
    assert Breaker(client, "y").acquire()[0] == CLOSED
    assert client.ttl(circuit.key("x")) > 0  # every key expires
