"""The spool keeps every appended batch, in order, and ignores a torn tail."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.spool import Spool, SpoolFull, encode_frame, read_frames


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


def test_corrupt_frame_stops_reading() -> None:
    good = encode_frame(b"a")
    bad = bytearray(encode_frame(b"b"))
    bad[-1] ^= 0xFF
    assert list(read_frames(good + bytes(bad) + encode_frame(b"c"))) == [b"a"]


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
