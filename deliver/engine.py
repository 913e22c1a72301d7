"""The delivery engine: every webhook POST, on one event loop, apart from the processes that apply callbacks.

Why its own process (`tspipe deliver`, the Procfile's `deliver`) rather than
Celery tasks: a Celery delivery held a whole worker process for as long as the
receiver took to answer, and the same processes applied callback batches. One
destination that accepted connections and never answered took both of a
worker's processes, so every other destination and ingestion itself waited
(issue 14: healthy lag went from 12 ms to 14 s at p99). Here a request in flight
is a coroutine: thousands cost a few megabytes, and each destination has its own
limit (`concurrency`), its own connection pool and its own timeout, so a hanging
one fills only its own slots.

Each destination runs one loop:
1. ask the circuit breaker (store/circuit.py): closed, probe, or wait (sleep
   until the circuit may close; held deliveries use no attempts and no CPU);
2. claim as many jobs as it has free slots (store/delivery_queue.py), which
   also brings due retries forward and takes over jobs whose engine died;
3. POST each one as its own task; results are settled in batches, one script
   call per batch for the queue and one for the breaker;
4. when nothing is ready, block on the destination's doorbell until fan-out
   rings it or the next retry falls due.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Sequence

import aiohttp
import redis.asyncio as aioredis
import structlog
from redis.exceptions import ConnectionError as RedisConnectionError, NoScriptError, TimeoutError as RedisTimeoutError

from config import tracing
from store import circuit, connection, deadletters, delivery_queue, keys
from workers.destinations import MAX_DELAY_SECONDS, Destination
from deliver.http import DeliveryFailed, post
from workers.webhooks import backoff, message_id, secret_bytes

log = structlog.get_logger("tspipe.deliver")
REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, OSError)


def rate_window(dest: Destination, now: float) -> tuple[int, int, float]:
    """(limit per window, window seconds, start of the current window), from "N/s" or "N/m"."""
    count, _, unit = (dest.rate_limit or "0/s").partition("/")
    window = 60 if unit.startswith("m") else 1
    return int(float(count)), window, now - now % window


class Scripts:
    """The engine's Lua scripts, called by SHA in pipelines.

    redis-py's Script objects send SCRIPT EXISTS before every pipeline that
    uses them: one more round trip per claim and per flush, a third of the
    engine's Redis time. These are loaded once, and loaded again when Redis
    has lost them (a restart).
    """

    TEXTS = {"claim": delivery_queue.CLAIM, "settle": delivery_queue.SETTLE, "breaker": circuit.CIRCUIT}

    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client
        self.sha: dict[str, str] = {}

    async def run(self, *calls: tuple[str, list, list]) -> list:
        """Each (script, keys, args) in one pipeline; their replies in order."""
        for attempt in range(2):
            if not self.sha:
                self.sha = {name: await self.client.script_load(text) for name, text in self.TEXTS.items()}
            pipe = self.client.pipeline(transaction=False)
            for name, script_keys, args in calls:
                pipe.evalsha(self.sha[name], len(script_keys), *script_keys, *args)
            try:
                return await pipe.execute()
            except NoScriptError:
                if attempt:
                    raise
                self.sha = {}
        raise AssertionError("unreachable")


class DestinationRunner:
    """One destination's loop: breaker, claim, POST, settle. Shares nothing with the others but Redis."""

    def __init__(self, dest: Destination, client: aioredis.Redis, lease_grace: float, stop: asyncio.Event,
                 deadletter_max_bytes: int = deadletters.MAX_BYTES) -> None:
        self.dest = dest
        self.deadletter_max_bytes = deadletter_max_bytes
        self.client = client
        self.stop = stop
        self.lease_seconds = dest.timeout + lease_grace
        self.key = secret_bytes(dest.secret)
        self.scripts = Scripts(client)
        self.bell = keys.DELIVERY_BELL.format(name=dest.name)
        self.in_flight: set[asyncio.Task] = set()
        self.slot_freed = asyncio.Event()
        self.results: list = []  # settle arguments, four per job
        self.outcomes: list[tuple[int, str]] = []  # (gen, outcome) for the breaker
        self.results_ready = asyncio.Event()
        # Set after a flush that changed what the loop waits for (a retry queued, a probe's outcome),
        # so a loop asleep on an earlier answer looks again instead of sleeping it out.
        self.kick = asyncio.Event()
        self.kick_after_flush = False
        self.last_mode = circuit.CLOSED
        self.session: aiohttp.ClientSession | None = None

    async def run(self) -> None:
        connector = aiohttp.TCPConnector(limit=self.dest.concurrency, limit_per_host=self.dest.concurrency)
        timeout = aiohttp.ClientTimeout(total=self.dest.timeout)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as self.session:
            flusher = asyncio.create_task(self._flush_loop())
            try:
                while not self.stop.is_set():
                    try:
                        await self._step()
                    except REDIS_DOWN as exc:
                        log.warning("delivery: Redis unreachable; retrying", destination=self.dest.name, error=str(exc))
                        await self._sleep(1.0)
                await self._drain()
            finally:
                flusher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await flusher
                with contextlib.suppress(Exception):
                    await self._flush()

    async def _step(self) -> None:
        free = self.dest.concurrency - len(self.in_flight)
        if free <= 0 or (self.in_flight and free < self.dest.concurrency // 2):
            # Claim in batches: wait for a slot, then (briefly) for half of them, so a busy
            # destination costs one claim per several requests rather than one per request.
            self.slot_freed.clear()
            await self._wait_event(self.slot_freed, None if free <= 0 else 0.002)
            if free <= 0:
                return
            free = self.dest.concurrency - len(self.in_flight)
        # Cleared before looking, so a flush that lands while this step looks still wakes its sleep.
        self.kick.clear()
        now = time.time()
        limit, window, start = rate_window(self.dest, now)
        acquire = circuit.acquire_args(now, self.dest.timeout + 1.0)
        claim_keys = delivery_queue.claim_keys(self.dest.name, int(start // window))
        if self.last_mode == circuit.CLOSED:
            # Optimistic: ask the breaker and claim in one round trip; jobs claimed while the
            # circuit turned out not to be closed go straight back, unsent.
            acquired, reply = await self.scripts.run(
                ("breaker", [circuit.key(self.dest.name)], acquire),
                ("claim", claim_keys, [now, now + self.lease_seconds, free, limit, window + 1]))
            mode, gen, wait = circuit.parse_acquire(acquired)
        else:
            (acquired,) = await self.scripts.run(("breaker", [circuit.key(self.dest.name)], acquire))
            mode, gen, wait = circuit.parse_acquire(acquired)
            reply = None
            if mode != circuit.WAIT:
                (reply,) = await self.scripts.run(("claim", claim_keys, [now, now + self.lease_seconds,
                                                                         1 if mode == circuit.PROBE else free,
                                                                         limit, window + 1]))
        self.last_mode = mode
        wake, limited, jobs = (reply[0], int(reply[1]), reply[2:]) if reply else ("", 0, [])
        keep = {circuit.CLOSED: len(jobs), circuit.PROBE: 1, circuit.WAIT: 0}[mode]
        for raw in jobs[keep:]:
            self._settle("back", delivery_queue.job_id(raw), raw, "")
        jobs = jobs[:keep]
        if mode == circuit.WAIT:
            # Open, or another engine is probing: sleep until it may close (jittered so engines
            # do not all probe at once), holding no job and using none of its attempts.
            await self._sleep(max(wait, 0.01) * random.uniform(1.0, 1.1))
            return
        if mode == circuit.PROBE and not jobs:
            self._report(gen, circuit.RELEASE, probe=True)
        for raw in jobs:
            task = asyncio.create_task(self._deliver(raw, gen, mode == circuit.PROBE))
            self.in_flight.add(task)
            task.add_done_callback(self._done)
        if jobs:
            return
        if limited:
            await self._sleep(start + window - time.time())
            return
        timeout = 1.0 if not wake else min(max(float(wake) - time.time(), 0.005), 1.0)
        await self._wait_bell(timeout)

    def _done(self, task: asyncio.Task) -> None:
        self.in_flight.discard(task)
        self.slot_freed.set()

    async def _deliver(self, raw: bytes, gen: int, probe: bool) -> None:
        dest = self.dest
        job = delivery_queue.read_job(raw)
        job_id = delivery_queue.job_id(raw)
        if time.time() - job.first_at > dest.max_age_seconds:
            self._dead(job_id, job, f"older than max_age_seconds={dest.max_age_seconds}", job.attempt - 1)
            if probe:
                self._report(gen, circuit.RELEASE, probe=True)
            return
        try:
            if job.traceparent and tracing.active():
                with traced_delivery(job.traceparent, dest.name, job.attempt):
                    await post(self.session, dest.url, self.key, message_id(job.body), job.body)
            else:
                await post(self.session, dest.url, self.key, message_id(job.body), job.body)
        except DeliveryFailed as exc:
            # A 4xx proves the receiver is up: for the breaker it is an answer, not a failure.
            self._report(gen, circuit.FAILURE if exc.retryable else circuit.SUCCESS, probe)
            if not exc.retryable or job.attempt >= dest.max_attempts:
                self._dead(job_id, job, str(exc), job.attempt)
                return
            delay = max(min(exc.retry_after or 0.0, MAX_DELAY_SECONDS), backoff(job.attempt, dest.backoff_base, dest.backoff_max))
            self._settle("retry", job_id, time.time() + delay, delivery_queue.next_attempt(raw, job))
            return
        except asyncio.CancelledError:
            self._settle("back", job_id, raw, "")
            if probe:
                self._report(gen, circuit.RELEASE, probe=True)
            raise
        except Exception:  # a bug here must not strand the job until its lease runs out
            log.exception("delivery: unexpected error", destination=dest.name)
            self._report(gen, circuit.RELEASE if probe else circuit.FAILURE, probe)
            self._settle("retry", job_id, time.time() + backoff(job.attempt, dest.backoff_base, dest.backoff_max),
                         delivery_queue.next_attempt(raw, job))
            return
        self._report(gen, circuit.SUCCESS, probe)
        self._settle("ok", job_id, "", "")

    def _dead(self, job_id: str, job: delivery_queue.Job, error: str, attempts: int) -> None:
        entry = deadletters.new_entry("destination", self.dest.name, job.body, error, attempts)
        self._settle("dead", job_id, deadletters.encode(entry), "")

    def _settle(self, op: str, job_id: str, a: object, b: object) -> None:
        self.results += [op, job_id, a, b]
        self.kick_after_flush |= op in ("retry", "back")
        self.results_ready.set()

    def _report(self, gen: int, outcome: str, probe: bool = False) -> None:
        self.outcomes.append((gen, outcome))
        self.kick_after_flush |= probe
        self.results_ready.set()

    async def _flush_loop(self) -> None:
        while True:
            await self.results_ready.wait()
            # A moment for more results to join this flush: one round trip for many deliveries.
            await asyncio.sleep(0.002)
            self.results_ready.clear()
            try:
                await self._flush()
            except REDIS_DOWN as exc:
                # The jobs stay in flight under their lease; whoever claims them next sends them again.
                log.warning("delivery: results not recorded; their jobs will be retried", destination=self.dest.name,
                            error=str(exc))
                await asyncio.sleep(0.5)

    async def _flush(self) -> None:
        results, self.results = self.results, []
        outcomes, self.outcomes = self.outcomes, []
        kick, self.kick_after_flush = self.kick_after_flush, False
        if not results and not outcomes:
            return
        dest = self.dest
        calls = []
        if results:
            calls.append(("settle", delivery_queue.settle_keys(dest.name),
                          [dest.name, self.deadletter_max_bytes, *results]))
        if outcomes:
            calls.append(("breaker", [circuit.key(dest.name)],
                          circuit.record_args(time.time(), dest.circuit_threshold, dest.circuit_cooldown, outcomes)))
        replies = await self.scripts.run(*calls)
        if results and (dropped := int(replies[0])):
            log.warning("dead letters over their cap: oldest entries dropped", dropped=dropped,
                        max_bytes=self.deadletter_max_bytes, destination=dest.name)
        if kick:
            self.kick.set()

    async def _drain(self) -> None:
        """On stop: let requests in flight finish (5 s at most), return the rest to the queue unsent."""
        if self.in_flight:
            await asyncio.wait(set(self.in_flight), timeout=min(self.dest.timeout, 5.0))
        for task in list(self.in_flight):
            task.cancel()
        if self.in_flight:
            await asyncio.wait(set(self.in_flight), timeout=2.0)

    async def _wait_bell(self, timeout: float) -> None:
        """Block until fan-out rings this destination's bell, the timeout passes or the engine stops."""
        bell = asyncio.ensure_future(self.client.blpop([self.bell], timeout=timeout))
        try:
            await self._sleep(timeout + 1.0, also=bell)
        finally:
            if not bell.done():
                bell.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await bell

    async def _sleep(self, seconds: float, also: asyncio.Future | None = None) -> None:
        """Sleep until `seconds` pass, the engine stops, a flush kicks the loop or `also` completes."""
        waits = {asyncio.ensure_future(self.stop.wait()), asyncio.ensure_future(self.kick.wait())}
        try:
            await asyncio.wait(waits | ({also} if also else set()), return_when=asyncio.FIRST_COMPLETED,
                               timeout=max(seconds, 0.0))
        finally:
            for waiter in waits:
                waiter.cancel()

    @staticmethod
    async def _wait_event(event: asyncio.Event, timeout: float | None) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)


class Engine:
    """Runs one DestinationRunner per destination until `stop` is set."""

    def __init__(self, destinations: Sequence[Destination], redis_url: str, lease_grace: float = 30.0,
                 deadletter_max_bytes: int = deadletters.MAX_BYTES) -> None:
        self.destinations = list(destinations)
        self.redis_url = redis_url
        self.lease_grace = lease_grace
        self.deadletter_max_bytes = deadletter_max_bytes
        self.stop = asyncio.Event()

    async def run(self) -> None:
        # Each idle destination holds one connection in BLPOP (1 s at most, under the client's timeout).
        client = connection.connect_async(self.redis_url)
        try:
            runners = [DestinationRunner(d, client, self.lease_grace, self.stop, self.deadletter_max_bytes)
                       for d in self.destinations]
            if not runners:
                log.info("delivery: no destinations configured (TSPIPE_DESTINATIONS); idle")
            log.info("delivery engine started", destinations=[d.name for d in self.destinations])
            tasks = [asyncio.create_task(r.run(), name=f"deliver:{r.dest.name}") for r in runners]
            stopper = asyncio.create_task(self.stop.wait())
            done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
            for task in done - {stopper}:
                task.result()  # a runner that died is a bug: surface it and stop the process
            self.stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            stopper.cancel()
        finally:
            await client.aclose()
        log.info("delivery engine stopped")


def traced_delivery(traceparent: str, destination: str, attempt: int):
    """A `tspipe.deliver` span in the trace of the callback the job came from (tracing on only).

    The aiohttp client instrumentation puts the POST itself under it.
    """
    from opentelemetry import trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    parent = TraceContextTextMapPropagator().extract({"traceparent": traceparent})
    return trace.get_tracer("tspipe.deliver").start_as_current_span(
        "tspipe.deliver", context=parent, attributes={"tspipe.destination": destination, "tspipe.attempt": attempt})
