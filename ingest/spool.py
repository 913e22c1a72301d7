"""The local spool: where acknowledged batches wait while Redis cannot be written.

Telesign retries a non-200 only three times in about 40 s, so an outage longer
than that would lose callbacks unless we hold them. Batches are appended to
segment files (`spool-<n>.log`), each frame = magic + length + CRC32 + payload,
fsync'd before the callers get their 200. A crash mid-append leaves a torn tail,
which the CRC or the length detects (that frame was never acknowledged).
Replay publishes whole segments in order and deletes a segment only after every
frame of it was confirmed, so a crash mid-replay may send a batch twice (workers
dedupe by event id) but never loses one.

Damage (a flipped bit on disk, a frame the publisher cannot read) must not cost
the frames around it: the reader resyncs on the next magic whose frame has a
good CRC, and every byte range that was not replayed is first written to a file
of its own under `damaged/` (fsync'd), for an operator to inspect, and only
then is the segment deleted. Each range is logged as an error and counted.

Not thread-safe on purpose: the ingress calls it only from its one spool
thread, which also keeps spool appends and replays in order.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import structlog

log = structlog.get_logger("tspipe.ingest")

MAGIC = b"TSP1"
_HEADER = struct.Struct(">4sII")  # magic, payload length, CRC32 of the payload
# Replay reads and publishes one whole segment at a time on the spool thread:
# a cap keeps its memory bounded and lets live batches pass between segments.
SEGMENT_MAX_BYTES = 4 * 1024 * 1024
# Where replay moves what it could not publish (never inside the segment glob).
DAMAGED_DIR = "damaged"


class DamageReason:
    """Why a byte range of a segment was set aside (the `reason` label on /metrics)."""

    CORRUPT = "corrupt"  # bad magic, length or CRC, with intact frames after it
    TORN_TAIL = "torn_tail"  # an incomplete last frame: a crash mid-append, never acknowledged
    UNREADABLE = "unreadable"  # intact on disk, but the publisher cannot make a batch of it


class UnreadableFrame(Exception):
    """Raised by a replay's publish callback for a frame that no retry can publish: it is set aside."""


class SpoolFull(Exception):
    """The spool reached its size limit: the ingress answers 503 so Telesign keeps the callback."""


def encode_frame(payload: bytes) -> bytes:
    return _HEADER.pack(MAGIC, len(payload), zlib.crc32(payload)) + payload


@dataclass(frozen=True)
class Damage:
    """A byte range of a segment that replay did not publish."""

    offset: int
    data: bytes
    reason: str


def _frame_at(data: bytes, offset: int) -> bytes | None:
    """The payload of the intact frame starting at `offset`, or None."""
    if offset + _HEADER.size > len(data):
        return None
    magic, length, crc = _HEADER.unpack_from(data, offset)
    start = offset + _HEADER.size
    end = start + length
    if magic != MAGIC or end > len(data):
        return None
    payload = data[start:end]
    return payload if zlib.crc32(payload) == crc else None


def scan(data: bytes) -> Iterator[tuple[int, bytes] | Damage]:
    """(offset, payload) for every intact frame, in order, and a Damage for every range between them.

    After a bad frame the reader looks for the next MAGIC that starts an intact
    frame (a false match needs the magic and a 32-bit CRC to agree by chance).
    """
    offset = 0
    while offset < len(data):
        payload = _frame_at(data, offset)
        if payload is not None:
            yield offset, payload
            offset += _HEADER.size + len(payload)
            continue
        resume = data.find(MAGIC, offset + 1)
        while resume != -1 and _frame_at(data, resume) is None:
            resume = data.find(MAGIC, resume + 1)
        end = len(data) if resume == -1 else resume
        yield Damage(offset, data[offset:end], DamageReason.TORN_TAIL if resume == -1 and _torn(data, offset)
                     else DamageReason.CORRUPT)
        offset = end


def _torn(data: bytes, offset: int) -> bool:
    """A frame cut short by the end of the file: what a crash mid-append leaves."""
    if offset + _HEADER.size > len(data):
        return data[offset:offset + len(MAGIC)] == MAGIC[: len(data) - offset]
    magic, length, _crc = _HEADER.unpack_from(data, offset)
    return magic == MAGIC and offset + _HEADER.size + length > len(data)


def read_frames(data: bytes) -> Iterator[bytes]:
    """Every intact frame's payload in order, skipping damaged ranges."""
    for item in scan(data):
        if not isinstance(item, Damage):
            yield item[1]


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
        # Set aside since start, by reason: exposed on /metrics.
        self.damaged: dict[str, int] = {}
        self.damaged_bytes = 0

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
        """Publish the oldest segment's frames in order, set its damaged ranges aside, then delete it.

        Returns True when a segment was fully replayed. If `publish` raises (other
        than UnreadableFrame), the segment stays and the error propagates: the
        next attempt starts it over. No append can interleave: the spool is used
        from one thread only.
        """
        if not self._segments:
            return False
        path = self._segments[0]
        data = path.read_bytes()
        damaged: list[Damage] = []
        for item in scan(data):
            if isinstance(item, Damage):
                damaged.append(item)
                continue
            offset, payload = item
            try:
                publish(payload)
            except UnreadableFrame as exc:
                damaged.append(Damage(offset, data[offset:offset + _HEADER.size + len(payload)],
                                      DamageReason.UNREADABLE))
                log.error("spool frame cannot be published", segment=path.name, offset=offset, why=str(exc))
        # Only now: a failed attempt keeps appending to the same open segment
        # instead of leaving one small file per retry during a long outage.
        if path == self._current_path():
            self._close_current()
        if damaged:
            self._set_aside(path, damaged)
        path.unlink()
        _fsync_dir(self.directory)
        self._segments.pop(0)
        self.size = max(0, self.size - len(data))
        return True

    def _set_aside(self, segment: Path, damaged: list[Damage]) -> None:
        """Write each damaged range to damaged/<segment>.at-<offset>.<reason> (fsync'd) before the segment goes."""
        folder = self.directory / DAMAGED_DIR
        folder.mkdir(exist_ok=True)
        for item in damaged:
            target = folder / f"{segment.stem}.at-{item.offset}.{item.reason}"
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, item.data)
                os.fsync(fd)
            finally:
                os.close(fd)
            self.damaged[item.reason] = self.damaged.get(item.reason, 0) + 1
            self.damaged_bytes += len(item.data)
            # A torn tail was never acknowledged (the crash came before the fsync answered): a warning.
            report = log.warning if item.reason == DamageReason.TORN_TAIL else log.error
            report("damaged spool bytes set aside; the callbacks in them were not replayed",
                   segment=segment.name, offset=item.offset, bytes=len(item.data), reason=item.reason,
                   path=str(target))
        _fsync_dir(folder)

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
