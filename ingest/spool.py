"""The local spool: where acknowledged batches wait while Redis cannot be written.

Telesign retries a non-200 only three times in about 40 s, so an outage longer
than that would lose callbacks unless we hold them. Batches are appended to
segment files (`spool-<n>.log`), each frame = magic + length + CRC32 + payload,
fsync'd before the callers get their 200. A crash mid-append leaves a torn tail,
which the CRC or the length detects and replay ignores (that frame was never
acknowledged). Replay publishes whole segments in order and deletes a segment
only after every frame of it was confirmed, so a crash mid-replay may send a
batch twice (workers dedupe by event id) but never loses one.

Not thread-safe on purpose: the ingress calls it only from its one spool
thread, which also keeps spool appends and replays in order.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

MAGIC = b"TSP1"
_HEADER = struct.Struct(">4sII")  # magic, payload length, CRC32 of the payload
# Replay reads and publishes one whole segment at a time on the spool thread:
# a cap keeps its memory bounded and lets live batches pass between segments.
SEGMENT_MAX_BYTES = 4 * 1024 * 1024


class SpoolFull(Exception):
    """The spool reached its size limit: the ingress answers 503 so Telesign keeps the callback."""


def encode_frame(payload: bytes) -> bytes:
    return _HEADER.pack(MAGIC, len(payload), zlib.crc32(payload)) + payload


def read_frames(data: bytes) -> Iterator[bytes]:
    """Every complete, intact frame in order; stops at the first torn or corrupt one."""
    offset = 0
    size = _HEADER.size
    while offset + size <= len(data):
        magic, length, crc = _HEADER.unpack_from(data, offset)
        start = offset + size
        end = start + length
        if magic != MAGIC or end > len(data):
            return
        payload = data[start:end]
        if zlib.crc32(payload) != crc:
            return
        yield payload
        offset = end


class Spool:
    def __init__(self, directory: str | os.PathLike[str], max_bytes: int) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.directory.mkdir(parents=True, exist_ok=True)
        self._segments = sorted(self.directory.glob("spool-*.log"), key=_segment_number)
        self.size = sum(p.stat().st_size for p in self._segments)
        self._next = (_segment_number(self._segments[-1]) + 1) if self._segments else 1
        self._fd: int | None = None  # the open (newest) segment, appended to
        self._fd_bytes = 0

    @property
    def empty(self) -> bool:
        return not self._segments

    def append(self, payload: bytes) -> None:
        """Durably append one batch (fsync'd), or raise SpoolFull without writing anything."""
        frame = encode_frame(payload)
        if self.size + len(frame) > self.max_bytes:
            raise SpoolFull(f"spool is full ({self.size} of {self.max_bytes} bytes)")
        if self._fd is None:
            path = self.directory / f"spool-{self._next:09d}.log"
            self._next += 1
            self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            self._fd_bytes = 0
            self._segments.append(path)
            _fsync_dir(self.directory)
        offset = os.lseek(self._fd, 0, os.SEEK_END)
        try:
            written = os.write(self._fd, frame)
            if written != len(frame):
                raise OSError(f"short write to the spool ({written} of {len(frame)} bytes)")
            os.fsync(self._fd)
        except OSError:
            # A half-written frame would hide every later frame from replay:
            # cut it off and start a fresh segment next time.
            try:
                os.ftruncate(self._fd, offset)
            finally:
                self._close_current()
            raise
        self.size += len(frame)
        self._fd_bytes += len(frame)
        if self._fd_bytes >= SEGMENT_MAX_BYTES:
            self._close_current()

    def replay_one(self, publish: Callable[[bytes], None]) -> bool:
        """Publish the oldest segment's frames in order, then delete it.

        Returns True when a segment was fully replayed. If `publish` raises, the
        segment stays and the error propagates: the next attempt starts it over.
        No append can interleave: the spool is used from one thread only.
        """
        if not self._segments:
            return False
        path = self._segments[0]
        data = path.read_bytes()
        for payload in read_frames(data):
            publish(payload)
        # Only now: a failed attempt keeps appending to the same open segment
        # instead of leaving one small file per retry during a long outage.
        if path == self._current_path():
            self._close_current()
        path.unlink()
        _fsync_dir(self.directory)
        self._segments.pop(0)
        self.size = max(0, self.size - len(data))
        return True

    def close(self) -> None:
        self._close_current()

    def _current_path(self) -> Path | None:
        return self._segments[-1] if self._fd is not None and self._segments else None

    def _close_current(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _segment_number(path: Path) -> int:
    try:
        return int(path.stem.split("-", 1)[1])
    except (IndexError, ValueError):
        return 0


def _fsync_dir(directory: Path) -> None:
    """Make a created or deleted segment survive a power cut, not only its contents."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
