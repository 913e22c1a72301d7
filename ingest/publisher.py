"""Stores batches as Celery task messages in Redis, spooling to disk while Redis fails.

Live batches are LPUSHed from the event loop through one reused async Redis
connection: a batch is in Redis when LPUSH returns, which is when callers may
answer 200. The same script call journals the message (store/journal.py),
so a worker that dies while taking it cannot lose it. (Publishing with kombu
meant a synchronous `send_task` on a thread: ~0.5 ms of CPU per batch plus GIL
hand-offs between that thread and the loop, a third of the ingress's CPU.)
The message is the one Celery would send, built by ingest/task_message.py, so
the workers consume it natively.

Everything touching the spool (appends during an outage, replay) runs on one
dedicated thread with a synchronous client: fsync and file reads must not
block the loop, one thread keeps spool order and needs no locks, and while
`outage` is set every new batch goes there too, so batches keep their order.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import structlog
from redis.exceptions import RedisError

from config import Settings
from ingest.spool import Spool, SpoolFull, UnreadableFrame
from ingest.task_message import ingest_batch_message
from store import connection, journal

log = structlog.get_logger("tspipe.ingest")

# A spooled batch: this byte, its task id (36 ASCII characters), then the encoded batch.
# (A msgpack batch, what earlier versions spooled, never starts with it.)
_SPOOL_FRAME = b"J"

# How fast an outage is noticed and how often the spool replay probes Redis.
CONNECT_TIMEOUT_S = 1.0
REPLAY_INTERVAL_S = 0.25


class Stored:
    """Where a batch went: "redis" or "spool"."""

    REDIS = "redis"
    SPOOL = "spool"


class Publisher:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.queue = settings.queue
        # No client-side retries: a failed batch is spooled at once instead.
        timeouts = {"connect_timeout": CONNECT_TIMEOUT_S, "timeout": CONNECT_TIMEOUT_S, "retries": 0}
        self._client = connection.connect_async(settings.redis_url, single_connection=True, **timeouts)
        self._sync_client = connection.connect(settings.redis_url, **timeouts)
        # Each batch is queued and journalled in one script (see store/journal.py).
        self._enqueue = self._client.register_script(journal.ENQUEUE)
        self._enqueue_sync = self._sync_client.register_script(journal.ENQUEUE)
        self._enqueue_keys = journal.enqueue_keys(self.queue)
        self._grace = settings.journal_grace_seconds
        self.spool = Spool(settings.effective_spool_dir, settings.spool_max_bytes)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tspipe-spool")
        # True while Redis is known to be failing or the spool still holds batches:
        # new batches then go straight to the spool, keeping the order of arrival.
        self.outage = not self.spool.empty

    # --- event loop side ---

    async def store(self, blob: bytes) -> str:
        """Durably store one encoded batch in Redis or, failing that, in the spool."""
        # The task id is chosen once: if Redis ran the script but the answer was lost, the
        # spooled copy carries the same id, and the replay finds it journalled and skips it.
        task_id = str(uuid.uuid4())
        if not self.outage:
            try:
                message = ingest_batch_message(blob, self.queue, task_id)
                await self._enqueue(self._enqueue_keys, journal.enqueue_args(task_id, message, self._grace))
                return Stored.REDIS
            except Exception as exc:
                self.outage = True
                log.warning("redis publish failed; spooling to disk", error=type(exc).__name__)
        frame = _SPOOL_FRAME + task_id.encode() + blob
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._store_sync, frame)

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
                except (RedisError, OSError) as exc:
                    log.debug("spool replay deferred; redis still failing", error=type(exc).__name__)
                except Exception:
                    # Not Redis: retrying will not help and nobody would see a debug line while the
                    # ingress spools every callback. Say so loudly; the segment stays on disk.
                    log.exception("spool replay failed; the ingress keeps spooling until this is fixed")
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
        await self._client.aclose()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._close_sync)
        self._executor.shutdown(wait=True)

    # --- spool thread only ---

    def _publish_sync(self, frame: bytes) -> None:
        """Queue one spooled batch; a no-op when its task id is journalled already.

        A frame whose task id is not a UUID (a CRC-valid frame can still hold
        garbage) raises UnreadableFrame, so the spool sets it aside and goes on
        instead of failing every replay for good.
        """
        if frame[:1] == _SPOOL_FRAME:
            task_id, blob = _task_id(frame[1:37]), frame[37:]
        else:  # a bare batch, spooled by an earlier version
            task_id, blob = str(uuid.uuid4()), frame
        message = ingest_batch_message(blob, self.queue, task_id)
        self._enqueue_sync(self._enqueue_keys, journal.enqueue_args(task_id, message, self._grace))

    def _store_sync(self, frame: bytes) -> str:
        """A batch that met an outage: straight to Redis if a replay ended it meanwhile, else spooled."""
        if not self.outage:
            try:
                self._publish_sync(frame)
                return Stored.REDIS
            except Exception as exc:
                self.outage = True
                log.warning("redis publish failed; spooling to disk", error=type(exc).__name__)
        self.spool.append(frame)  # SpoolFull propagates: callers answer 503
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

    def _close_sync(self) -> None:
        self._sync_client.close()
        self.spool.close()


def _task_id(raw: bytes) -> str:
    try:
        task_id = raw.decode("ascii")
        if len(task_id) == 36 and str(uuid.UUID(task_id)) == task_id:
            return task_id
    except (UnicodeDecodeError, ValueError):
        pass
    raise UnreadableFrame(f"spooled batch has no valid task id: {raw[:36]!r}")


__all__ = ["Publisher", "SpoolFull", "Stored"]
