"""A Redis outage mid-stream: every request still gets 200, the spool holds the batches,
and once Redis is back every acknowledged body is in the queue exactly once."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import redis

from ingest.app import PUBLISHER_KEY, create_app
from tests.ingest.conftest import make_settings, signed
from tests.ingest.queue import queued_bodies
from tspipe.redis_server import RedisServer, free_port


def _durable(server: RedisServer) -> None:
    """fsync every write, so a SIGKILLed Redis keeps what it acknowledged (production should too)."""
    client = redis.Redis.from_url(server.url)
    client.config_set("appendfsync", "always")
    client.close()


async def _post_all(client, bodies: list[bytes]) -> list[int]:
    responses = await asyncio.gather(*(client.post("/callbacks/sms", data=b, headers=signed(b)) for b in bodies))
    return [r.status for r in responses]


async def test_outage_spools_then_replays_exactly_once(aiohttp_client, own_redis: RedisServer, tmp_path: Path) -> None:
    _durable(own_redis)
    app = create_app(make_settings(own_redis.url, tmp_path))
    client = await aiohttp_client(app)
    publisher = app[PUBLISHER_KEY]
    before = [b'{"n": "before-%d"}' % i for i in range(30)]
    during = [b'{"n": "during-%d"}' % i for i in range(60)]
    after = [b'{"n": "after-%d"}' % i for i in range(10)]

    assert await _post_all(client, before) == [200] * len(before)
    own_redis.kill()
    # In waves, as Telesign would send them, with the outage noticed inside the stream.
    for wave in range(0, len(during), 20):
        assert await _post_all(client, during[wave : wave + 20]) == [200] * 20
    assert publisher.spool.size > 0
    ready = await client.get("/readyz")
    assert ready.status == 503
    assert (await ready.json())["outage"] is True
    metrics = await (await client.get("/metrics")).text()
    assert "tspipe_ingest_spool_bytes 0.0" not in metrics

    own_redis.start()
    deadline = time.monotonic() + 10
    while publisher.outage and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert not publisher.outage and publisher.spool.empty
    assert await _post_all(client, after) == [200] * len(after)
    assert (await client.get("/readyz")).status == 200

    queued = queued_bodies(own_redis.url)
    assert sorted(queued) == sorted(before + during + after)  # each exactly once
    # The spooled batches keep their order among themselves.
    spooled = [b for b in queued if b.startswith(b'{"n": "during')]
    assert spooled == during


async def test_leftover_spool_is_replayed_on_startup(aiohttp_client, own_redis: RedisServer, tmp_path: Path) -> None:
    from ingest.spool import Spool
    from pipeline.record import Record, encode_batch

    settings = make_settings(own_redis.url, tmp_path)
    spool = Spool(settings.effective_spool_dir, settings.spool_max_bytes)
    spool.append(encode_batch([Record(body=b"left-over", received_at=1.0)]))
    spool.close()
    app = create_app(settings)
    await aiohttp_client(app)
    deadline = time.monotonic() + 5
    while app[PUBLISHER_KEY].outage and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert queued_bodies(own_redis.url) == [b"left-over"]


async def test_spool_full_is_503(aiohttp_client, tmp_path: Path) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    app = create_app(make_settings(dead, tmp_path, spool_max_bytes=200, telesign_api_keys=()))
    client = await aiohttp_client(app)
    assert (await client.post("/callbacks", data=b"x" * 50)).status == 200
    statuses = [(await client.post("/callbacks", data=b"x" * 50)).status for _ in range(3)]
    assert statuses[-1] == 503
    assert "spool full" in (await (await client.post("/callbacks", data=b"x" * 50)).json())["error"]


async def test_a_write_whose_answer_was_lost_is_not_queued_twice(own_redis: RedisServer, tmp_path: Path) -> None:
    """Redis ran the enqueue script, then the connection broke before the answer: the batch is spooled
    too. Its replay, and a replay started over after a crash mid-segment, find the task id journalled."""
    from ingest.publisher import Publisher
    from ingest.spool import Spool
    from pipeline.record import Record, encode_batch

    settings = make_settings(own_redis.url, tmp_path)
    publisher = Publisher(settings)
    blob = encode_batch([Record(body=b"answer-lost", received_at=1.0)])
    await publisher.store(blob)  # the write Redis did run
    message = redis.Redis.from_url(own_redis.url).lindex("tspipe.ingest", 0)
    task_id = json.loads(message)["headers"]["id"]
    # What store() spools when the answer does not come back: the same task id and batch.
    frame = b"J" + task_id.encode() + blob
    spool = Spool(tmp_path / "replay", settings.spool_max_bytes)
    spool.append(frame)
    spool.append(frame)  # a segment replayed again after a crash half-way
    while spool.replay_one(publisher._publish_sync):
        pass
    assert queued_bodies(own_redis.url) == [b"answer-lost"]
    await publisher.close()


async def test_spooled_frame_with_a_non_utf8_task_id_does_not_wedge_the_ingress(
    aiohttp_client, own_redis: RedisServer, tmp_path: Path
) -> None:
    """A CRC-valid frame whose task id is garbage is set aside and counted; the rest replays and the outage ends."""
    from ingest.spool import DAMAGED_DIR, Spool, encode_frame
    from pipeline.record import Record, encode_batch

    settings = make_settings(own_redis.url, tmp_path)
    spool = Spool(settings.effective_spool_dir, settings.spool_max_bytes)

    def frame(body: bytes, task_id: bytes) -> bytes:
        return b"J" + task_id + encode_batch([Record(body=body, received_at=1.0)])

    spool.append(frame(b"first", b"8c1d4c0e-3a52-4c2e-9d55-0f6f4b1e2a01"))
    poison = frame(b"poison", b"\xff\xfe" * 18)
    spool.append(poison)
    spool.append(frame(b"last", b"8c1d4c0e-3a52-4c2e-9d55-0f6f4b1e2a02"))
    spool.close()
    app = create_app(settings)
    client = await aiohttp_client(app)
    publisher = app[PUBLISHER_KEY]
    deadline = time.monotonic() + 5
    while publisher.outage and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert not publisher.outage and publisher.spool.empty
    assert queued_bodies(own_redis.url) == [b"first", b"last"]
    aside = list(Path(settings.effective_spool_dir, DAMAGED_DIR).iterdir())
    assert [p.read_bytes() for p in aside] == [encode_frame(poison)]
    metrics = await (await client.get("/metrics")).text()
    assert 'tspipe_ingest_spool_damaged_total{reason="unreadable"} 1.0' in metrics
    # Later callbacks go straight to Redis again instead of into the spool for good.
    assert await _post_all(client, [b'{"n": "after"}']) == [200]
    assert queued_bodies(own_redis.url) == [b"first", b"last", b'{"n": "after"}']
    assert publisher.spool.empty
