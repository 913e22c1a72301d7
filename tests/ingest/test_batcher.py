"""The batching policy on its own: a fake publisher records every write (no Redis needed for timing)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from config import load_settings
from ingest.batcher import Batcher
from ingest.metrics import IngestMetrics
from pipeline.record import Record, decode_batch


class RecordingPublisher:
    """Stands in for ingest.publisher.Publisher: each store() is one queue message."""

    class _Spool:
        size = 0

    def __init__(self, write_seconds: float = 0.0005) -> None:
        self.spool = self._Spool()
        self.writes: list[tuple[float, int]] = []
        self.write_seconds = write_seconds

    async def store(self, blob: bytes) -> str:
        self.writes.append((time.monotonic(), len(decode_batch(blob))))
        await asyncio.sleep(self.write_seconds)
        return "redis"


def make_batcher(tmp_path: Path, **overrides: object) -> tuple[Batcher, RecordingPublisher]:
    settings = load_settings({}, redis_url="redis://127.0.0.1:1/0", spool_dir=str(tmp_path), **overrides)
    publisher = RecordingPublisher()
    return Batcher(settings, publisher, IngestMetrics()), publisher  # type: ignore[arg-type]


def record(i: int) -> Record:
    return Record(body=b'{"n":%d}' % i, received_at=time.time())


async def test_a_lone_callback_is_written_at_once(tmp_path: Path) -> None:
    batcher, publisher = make_batcher(tmp_path, batch_max_wait_ms=200.0)
    batcher.start()
    started = time.monotonic()
    await batcher.submit(record(1))
    assert time.monotonic() - started < 0.1  # far below the 200 ms linger
    assert [n for _, n in publisher.writes] == [1]
    await batcher.close()


async def test_a_steady_stream_becomes_few_messages(tmp_path: Path) -> None:
    """2,000 callbacks/s for 0.5 s, one at a time (open loop, like Telesign): not 1,000 tiny messages."""
    batcher, publisher = make_batcher(tmp_path, batch_max_wait_ms=10.0, batch_target_records=1000)
    batcher.start()
    waiting = []
    start = time.monotonic()
    for i in range(1000):
        due = start + i / 2000
        if due > time.monotonic():
            await asyncio.sleep(due - time.monotonic())
        waiting.append(asyncio.ensure_future(batcher.submit(record(i))))
    await asyncio.gather(*waiting)
    await batcher.close()
    elapsed = time.monotonic() - start
    sizes = [n for _, n in publisher.writes]
    assert sum(sizes) == 1000
    # At most one write per 10 ms (plus the first one after the quiet start).
    assert len(sizes) <= elapsed / 0.010 + 2, sizes
    assert sum(sizes) / len(sizes) >= 10
    gaps = [b - a for (a, _), (b, _) in zip(publisher.writes, publisher.writes[1:])]
    assert min(gaps) >= 0.009


async def test_a_batch_at_the_target_size_does_not_wait(tmp_path: Path) -> None:
    batcher, publisher = make_batcher(tmp_path, batch_max_wait_ms=500.0, batch_target_records=8)
    batcher.start()
    await batcher.submit(record(0))  # the quiet-spell write; steady traffic from now on
    started = time.monotonic()
    await asyncio.gather(*(batcher.submit(record(i)) for i in range(1, 9)))
    assert time.monotonic() - started < 0.25  # the 500 ms linger was cut short by the target
    assert [n for _, n in publisher.writes] == [1, 8]
    await batcher.close()


async def test_close_writes_a_lingering_batch_at_once(tmp_path: Path) -> None:
    batcher, publisher = make_batcher(tmp_path, batch_max_wait_ms=5000.0)
    batcher.start()
    await batcher.submit(record(0))
    pending = asyncio.ensure_future(batcher.submit(record(1)))
    await asyncio.sleep(0.05)
    started = time.monotonic()
    await batcher.close()
    await pending
    assert time.monotonic() - started < 1.0
    assert [n for _, n in publisher.writes] == [1, 1]
