"""The spool keeps every appended batch, in order, and ignores a torn tail."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.spool import (
    DAMAGED_DIR,
    Damage,
    DamageReason,
    Spool,
    SpoolFull,
    UnreadableFrame,
    encode_frame,
    read_frames,
    scan,
)


def test_append_replay_in_order(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 1 << 20)
    for i in range(5):
        spool.append(b"batch-%d" % i)
    assert spool.size > 0
    seen: list[bytes] = []
    assert spool.replay_one(seen.append)
    spool.append(b"late")  # goes to a new segment, replayed after the first
    while spool.replay_one(seen.append):
        pass
    assert seen == [b"batch-%d" % i for i in range(5)] + [b"late"]
    assert spool.empty and spool.size == 0 and not list(tmp_path.iterdir())


def test_failed_replay_keeps_segment(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 1 << 20)
    spool.append(b"one")
    spool.append(b"two")

    def broken(_: bytes) -> None:
        raise ConnectionError("redis down")

    with pytest.raises(ConnectionError):
        spool.replay_one(broken)
    spool.append(b"three")  # same segment: no new file per failed attempt
    assert len(list(tmp_path.glob("spool-*.log"))) == 1
    seen: list[bytes] = []
    assert spool.replay_one(seen.append)
    assert seen == [b"one", b"two", b"three"]
    assert spool.empty and spool.size == 0


def test_torn_tail_ignored_and_survives_restart(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 1 << 20)
    spool.append(b"kept")
    spool.close()
    segment = next(tmp_path.glob("spool-*.log"))
    with segment.open("ab") as f:
        f.write(encode_frame(b"torn-frame")[:-3])
    reopened = Spool(tmp_path, 1 << 20)
    seen: list[bytes] = []
    assert reopened.replay_one(seen.append)
    assert seen == [b"kept"]
    assert reopened.damaged == {DamageReason.TORN_TAIL: 1}  # set aside too: nothing is deleted unread


def test_corrupt_frame_is_skipped_and_reading_resumes_at_the_next_good_frame() -> None:
    good = encode_frame(b"a")
    bad = bytearray(encode_frame(b"b"))
    bad[-1] ^= 0xFF
    assert list(read_frames(good + bytes(bad) + encode_frame(b"c"))) == [b"a", b"c"]
    damage = [item for item in scan(good + bytes(bad) + encode_frame(b"c")) if isinstance(item, Damage)]
    assert damage == [Damage(len(good), bytes(bad), DamageReason.CORRUPT)]


def test_corrupt_header_resyncs_on_the_next_magic() -> None:
    frames = [encode_frame(b"payload-%d" % i) for i in range(4)]
    data = bytearray(b"".join(frames))
    data[len(frames[0]) + 5] ^= 0x40  # the second frame's length field
    assert list(read_frames(bytes(data))) == [b"payload-0", b"payload-2", b"payload-3"]


def test_corrupt_segment_sets_damaged_bytes_aside_and_replays_the_rest(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 1 << 20)
    for i in range(10):
        spool.append(b"batch-%d" % i)
    spool.close()
    segment = next(tmp_path.glob("spool-*.log"))
    data = bytearray(segment.read_bytes())
    frame_size = len(encode_frame(b"batch-0"))
    data[3 * frame_size + 14] ^= 0x01  # a payload byte of the fourth frame
    segment.write_bytes(bytes(data))
    reopened = Spool(tmp_path, 1 << 20)
    seen: list[bytes] = []
    assert reopened.replay_one(seen.append)
    assert seen == [b"batch-%d" % i for i in range(10) if i != 3]
    assert not segment.exists() and reopened.empty
    aside = list((tmp_path / DAMAGED_DIR).iterdir())
    assert [p.name for p in aside] == [f"{segment.stem}.at-{3 * frame_size}.corrupt"]
    assert aside[0].read_bytes() == bytes(data[3 * frame_size:4 * frame_size])
    assert reopened.damaged == {DamageReason.CORRUPT: 1} and reopened.damaged_bytes == frame_size


def test_unreadable_frame_is_set_aside_and_replay_goes_on(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 1 << 20)
    for payload in (b"one", b"poison", b"two"):
        spool.append(payload)
    seen: list[bytes] = []

    def publish(payload: bytes) -> None:
        if payload == b"poison":
            raise UnreadableFrame("not a batch")
        seen.append(payload)

    assert spool.replay_one(publish)
    assert seen == [b"one", b"two"] and spool.empty
    assert [p.read_bytes() for p in (tmp_path / DAMAGED_DIR).iterdir()] == [encode_frame(b"poison")]
    assert spool.damaged == {DamageReason.UNREADABLE: 1}


def test_full(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 64)
    spool.append(b"x" * 20)
    with pytest.raises(SpoolFull):
        spool.append(b"x" * 40)


def test_segments_rotate_at_size_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ingest.spool

    monkeypatch.setattr(ingest.spool, "SEGMENT_MAX_BYTES", 100)
    spool = Spool(tmp_path, 1 << 20)
    for i in range(6):
        spool.append(b"%d" % i * 40)
    assert len(list(tmp_path.glob("spool-*.log"))) == 3
    seen: list[bytes] = []
    while spool.replay_one(seen.append):
        pass
    assert seen == [b"%d" % i * 40 for i in range(6)]
