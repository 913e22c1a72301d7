"""Publishes batches as Celery task messages from one dedicated thread, spooling on failure.

kombu producers are synchronous, so every publish (and every spool append or
replay) runs on one thread: that keeps the event loop free, keeps spool order,
and needs no locks. With the Redis transport a publish returns only after LPUSH
returned, i.e. the batch is in Redis: that is when callers may answer 200.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import structlog
from celery import Celery

from config import Settings
from ingest.spool import Spool, SpoolFull
from pipeline.record import INGEST_BATCH_TASK
from workers.app import make_celery

log = structlog.get_logger("tspipe.ingest")

# How fast an outage is noticed and how often the spool replay probes Redis.
CONNECT_TIMEOUT_S = 1.0
REPLAY_INTERVAL_S = 0.25


class Stored:
    """Where a batch went: "redis" or "spool"."""

    REDIS = "redis"
    SPOOL = "spool"


class Publisher:
    def __init__(self, settings: Settings, celery_app: Celery | None = None) -> None:
        self.settings = settings
        self.app = celery_app or make_celery(settings)
        # Fail fast instead of retrying inside kombu: a failed batch is spooled at once.
        self.app.conf.broker_transport_options = {
            **(self.app.conf.broker_transport_options or {}),
            "socket_connect_timeout": CONNECT_TIMEOUT_S,
            "socket_timeout": CONNECT_TIMEOUT_S,
            # kombu's connect loop would otherwise retry for seconds per batch.
            "max_retries": 0,
        }
        self.app.conf.broker_connection_timeout = CONNECT_TIMEOUT_S
        self.spool = Spool(settings.effective_spool_dir, settings.spool_max_bytes)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tspipe-publisher")
        self._connection = None
        self._producer = None
        # True while Redis is known to be failing or the spool still holds batches:
        # new batches then go straight to the spool, keeping the order of arrival.
        self.outage = not self.spool.empty

    # --- publisher thread only ---

    def _publish_sync(self, blob: bytes) -> None:
        if self._producer is None:
            self._connection = self.app.connection_for_write()
            self._producer = self.app.amqp.Producer(self._connection)
        try:
            self.app.send_task(
                INGEST_BATCH_TASK,
                args=(blob,),
                queue=self.settings.queue,
                producer=self._producer,
                retry=False,
                # Celery would otherwise saferepr() the whole blob into a header on every publish.
                argsrepr="(<batch>,)",
                kwargsrepr="{}",
            )
        except Exception:
            self._reset_connection()
            raise

    def _reset_connection(self) -> None:
        connection, self._connection, self._producer = self._connection, None, None
        if connection is not None:
            try:
                connection.close()
            except Exception:  # a broken connection may fail to close; it is dropped either way
                pass

    def _store_sync(self, blob: bytes) -> str:
        if not self.outage:
            try:
                self._publish_sync(blob)
                return Stored.REDIS
            except Exception as exc:
                self.outage = True
                log.warning("redis publish failed; spooling to disk", error=type(exc).__name__)
        self.spool.append(blob)  # SpoolFull propagates: callers answer 503
        return Stored.SPOOL

    def _replay_sync(self) -> bool:
        """Replay the oldest spooled segment; clear the outage once the spool is empty.

        One segment per call, so live batches queued on this thread get their
        turn between segments while a long backlog drains.
        """
        replayed = self.spool.replay_one(self._publish_sync)
        if self.spool.empty:
            self.outage = False
        return replayed

    # --- event loop side ---

    async def store(self, blob: bytes) -> str:
        """Durably store one encoded batch in Redis or, failing that, in the spool."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._store_sync, blob)

    async def replay_loop(self) -> None:
        """Runs for the life of the app: drains the spool into Redis whenever Redis answers."""
        loop = asyncio.get_running_loop()
        while True:
            if self.outage:
                started = time.monotonic()
                replayed = 0
                try:
                    while self.outage and await loop.run_in_executor(self._executor, self._replay_sync):
                        replayed += 1
                except Exception as exc:
                    log.debug("spool replay deferred; redis still failing", error=type(exc).__name__)
                if replayed:
                    log.info("spool replayed into redis", segments=replayed, spool_bytes=self.spool.size,
                             seconds=round(time.monotonic() - started, 3))
            await asyncio.sleep(REPLAY_INTERVAL_S)

    async def replay_now(self) -> None:
        """Drain the spool now, e.g. at shutdown; raises while Redis still fails."""
        loop = asyncio.get_running_loop()
        while await loop.run_in_executor(self._executor, self._replay_sync):
            pass

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._close_sync)
        self._executor.shutdown(wait=True)

    def _close_sync(self) -> None:
        self._reset_connection()
        self.spool.close()


__all__ = ["Publisher", "SpoolFull", "Stored"]
