"""Micro-batching: callbacks that arrive together share one durable write.

Each request adds its Record and awaits only its own future; one
write is in flight at a time, and the records that arrive meanwhile form the
next batch. Two regimes decide when a batch is written:

- After a quiet spell (no write started in the last batch_max_wait_ms), the
  batch closes as soon as an event-loop iteration brings no new record: a
  lone callback is not held back.
- Under steady traffic, a batch waits until batch_max_wait_ms after the
  previous write started, or until it holds batch_target_records. Every
  queue message costs a Celery worker about a millisecond whatever its size,
  so an open-loop stream of callbacks (Telesign's, say 5,000/s) must not
  become thousands of tiny messages; the wait (Kafka's linger.ms) bounds
  the messages to about 1000/batch_max_wait_ms per second plus full ones.

Pending requests are bounded by max_pending_requests so a stalled Redis turns
into 503s (Telesign retries) instead of unbounded memory.

submit() runs once per callback, so it is a plain function (no coroutine of
its own) and wakes the batcher task only when that task is idle.
"""

from __future__ import annotations

import asyncio
import time

from config import Settings
from ingest.metrics import IngestMetrics
from ingest.publisher import Publisher, Stored
from pipeline.record import Record, encode_batch


class Overloaded(Exception):
    """Too many requests are already waiting for a write: answer 503."""


class Batcher:
    def __init__(self, settings: Settings, publisher: Publisher, metrics: IngestMetrics) -> None:
        self._max_records = settings.batch_max_records
        self._max_wait = settings.batch_max_wait_ms / 1000.0
        self._target = min(settings.batch_target_records, settings.batch_max_records)
        self._last_write = float("-inf")  # loop time the previous write started
        self._enough = asyncio.Event()  # set by submit() once the batch reaches the target
        self._max_pending = settings.max_pending_requests
        self._publisher = publisher
        self._metrics = metrics
        self._records: list[Record] = []
        self._futures: list[asyncio.Future[str]] = []
        self._pending = 0  # submitted and not yet answered: queued or in the write in flight
        self._wake = asyncio.Event()
        self._idle = False  # the batcher task waits on _wake for the first record
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        # Kept because asyncio.get_running_loop() makes a getpid() system call per request.
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def pending(self) -> int:
        return self._pending

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = self._loop.create_task(self._run(), name="tspipe-batcher")

    def submit(self, record: Record) -> asyncio.Future[str]:
        """Queue `record`; the future tells where it was durably stored (Stored.REDIS or Stored.SPOOL).

        Raises Overloaded at once, and the future carries SpoolFull or the
        write's error: either way the caller answers non-200.
        """
        if self._closing or self._loop is None:
            raise Overloaded("not taking callbacks (not started, or shutting down)")
        if self._pending >= self._max_pending:
            raise Overloaded("too many callbacks waiting for a write")
        future: asyncio.Future[str] = self._loop.create_future()
        records = self._records
        records.append(record)
        self._futures.append(future)
        self._pending += 1
        if self._idle:
            self._idle = False
            self._wake.set()
        if len(records) >= self._target:
            self._enough.set()
        return future

    async def close(self) -> None:
        """Stop taking records and write what is pending (graceful shutdown)."""
        self._closing = True
        self._idle = False
        self._wake.set()
        self._enough.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._records:
                if self._closing:
                    return
                self._wake.clear()
                self._idle = True
                await self._wake.wait()
                continue
            # Records that arrived during the previous write have waited already:
            # the steady-traffic deadline counts from that write's start.
            await self._gather(loop)
            records = self._records[: self._max_records]
            futures = self._futures[: self._max_records]
            del self._records[: self._max_records]
            del self._futures[: self._max_records]
            await self._write(records, futures)

    async def _gather(self, loop: asyncio.AbstractEventLoop) -> None:
        """Let concurrent requests join the batch (the two regimes in the module docstring)."""
        now = loop.time()
        if now - self._last_write >= self._max_wait:
            # Quiet spell: one event-loop iteration at a time (each reads every
            # socket that is ready) while new records keep arriving.
            deadline = now + self._max_wait
            while not self._closing and len(self._records) < self._max_records and loop.time() < deadline:
                before = len(self._records)
                await asyncio.sleep(0)
                if len(self._records) == before:
                    return
            return
        # Steady traffic: linger until the target size or the interval since the last write.
        if self._closing or len(self._records) >= self._target:
            return
        self._enough.clear()
        timer = loop.call_at(self._last_write + self._max_wait, self._enough.set)
        try:
            await self._enough.wait()
        finally:
            timer.cancel()

    async def _write(self, records: list[Record], futures: list[asyncio.Future[str]]) -> None:
        self._last_write = self._loop.time()
        started = time.perf_counter()
        try:
            where = await self._publisher.store(encode_batch(records))
        except Exception as exc:
            self._pending -= len(futures)
            for future in futures:
                if not future.done():
                    future.set_exception(exc)
            return
        self._pending -= len(futures)
        self._metrics.batch_size.observe(len(records))
        self._metrics.observe_write(where, time.perf_counter() - started)
        self._metrics.spool_bytes.set(self._publisher.spool.size)
        for future in futures:
            if not future.done():
                future.set_result(where)


__all__ = ["Batcher", "Overloaded", "Stored"]
