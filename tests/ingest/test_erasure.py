"""DELETE /v1/subjects/{address} and `tspipe erase`: an address leaves every Redis key and every table; its STOP stays.

Real Redis, real PostgreSQL, the real app and the real worker code path.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from datetime import datetime, timezone

import psycopg
import pytest
import redis

from config.settings import load_settings, reset_settings_cache
from ingest.app import create_app
from pipeline.record import Record, encode_batch
from store.archive_backlog import Backlog
from store.state import Store
from tests.archive.support import delivery_body
from tests.conftest import fixture_bodies
from tests.workers.conftest import body
from workers.archiver import Archiver
from workers.tasks import process_batch, reset_store

KEY = "test-erasure-key-0123456789"
SUBJECT = "+1 (123) 456-7890"  # 11234567890 in the Telesign samples
# The number in clear in any spelling, or masked but showing more than its last 4 digits.
FORBIDDEN = [b"1234567890", b"123 456 7890", b"123-456-7890", b"(123) 456", b"123.456.7890"]
MORE_THAN_LAST_4 = re.compile(rb"(?<![0-9a-fA-F])[0-9*xX# -]*67890(?![0-9a-fA-F])")


def mentions(data: bytes) -> bool:
    return any(f in data for f in FORBIDDEN) or bool(MORE_THAN_LAST_4.search(data))


def redis_dump(client: redis.Redis) -> list[tuple[bytes, bytes]]:
    """Every key and everything it holds, as bytes."""
    out = []
    for key in client.scan_iter(count=1000):
        kind = client.type(key)
        if kind == b"string":
            value = client.get(key) or b""
        elif kind == b"hash":
            value = b" ".join(k + b"=" + v for k, v in client.hgetall(key).items())
        elif kind == b"list":
            value = b" ".join(client.lrange(key, 0, -1))
        elif kind == b"set":
            value = b" ".join(client.smembers(key))
        elif kind == b"zset":
            value = b" ".join(client.zrange(key, 0, -1))
        elif kind == b"stream":
            value = b" ".join(b" ".join(k + b"=" + v for k, v in fields.items()) for _, fields in client.xrange(key))
        else:
            raise AssertionError(f"unexpected Redis type {kind!r} for {key!r}")
        out.append((key, value))
    return out


def table_dump(url: str) -> list[tuple[str, bytes]]:
    """Every row of every table of the archive's schema, each column as text (bytea as its bytes)."""
    out = []
    with psycopg.connect(url) as conn:
        tables = [t for (t,) in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()")]
        for table in tables:
            columns = conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name = %s", (table,)).fetchall()
            exprs = [f"encode({c}, 'escape')" if t == "bytea" else f"{c}::text" for c, t in columns]
            for row in conn.execute(f"SELECT {', '.join(exprs)} FROM {table}"):
                out.append((table, " ".join(v or "" for v in row).encode()))
    return out


@pytest.fixture
def loaded(redis_url, database_url, monkeypatch):
    """The subject's callbacks applied and archived, some still in the backlog, one quarantined, one dead letter;
    another person's event beside them."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    reset_settings_cache()
    reset_store()
    client = redis.Redis.from_url(redis_url)
    store = Store(client)
    now = time.time()
    late_stop = body("mo_whatsapp_keyword_stop", status_updated_on="2030-01-01T00:00:00Z")
    bodies = [*fixture_bodies().values(), late_stop, delivery_body("KEEP1", "447700900123", datetime.now(timezone.utc))]
    process_batch(encode_batch([Record(b, now, None, f"r{i}") for i, b in enumerate(bodies)]), store)
    archiver = Archiver(Backlog(client), database_url, block_ms=10)
    archiver.backlog.ensure_group()
    while archiver.run_once():
        pass
    # Still waiting for the archive: one more of the subject's callbacks, spelled differently.
    waiting = delivery_body("WAIT1", "+1 123 456 7890", datetime.now(timezone.utc))
    process_batch(encode_batch([Record(waiting, now, "sms", "r-wait")]), store)
    process_batch(encode_batch([Record(b'{"phone_number": "+1 (123) 456-7890", "broken', now, "sms", "r-bad")]), store)
    store.dead_letter({"kind": "delivery", "payload": {"phone_number": "11234567890"}, "error": "HTTP 500", "attempts": 5})
    assert store.optout("11234567890").opted_out
    assert any(mentions(v) or mentions(k) for k, v in redis_dump(client))
    assert any(mentions(v) for _, v in table_dump(database_url))
    yield client, archiver
    archiver._close()
    reset_store()


async def test_erasure_leaves_no_trace_and_keeps_the_stop(loaded, redis_url, database_url, aiohttp_client):
    client, archiver = loaded
    settings = load_settings({}, redis_url=redis_url, database_url=database_url, erasure_key=KEY, api_token="tok")
    app = await aiohttp_client(create_app(settings))
    auth = {"Authorization": "Bearer tok"}
    assert (await app.delete("/v1/subjects/11234567890")).status == 401
    assert (await app.delete("/v1/subjects/nobody", headers=auth)).status == 400
    response = await app.delete(f"/v1/subjects/{SUBJECT}", headers=auth)
    assert response.status == 200, await response.text()
    answer = await response.json()
    assert answer["address"] == SUBJECT
    erased = answer["erased"]
    assert erased["archive"] >= 8 and erased["backlog"] == 1 and erased["quarantine"] == 1
    assert erased["dead_letters"] == 1 and erased["opt_outs"] == 1 and erased["state"] >= 1
    while archiver.run_once():  # the scrubbed backlog drains; nothing of the subject comes back
        pass

    leaks = [(k, v[:200]) for k, v in redis_dump(client) if mentions(k) or mentions(v)]
    assert not leaks, leaks
    leaks = [(t, v[:200]) for t, v in table_dump(database_url) if mentions(v)]
    assert not leaks, leaks

    optout = await app.get("/v1/opt-outs/11234567890", headers=auth)
    assert optout.status == 200 and (await optout.json())["opted_out"] is True
    assert (await (await app.get("/v1/events", params={"phone_number": SUBJECT}, headers=auth)).json())["events"] == []
    kept = await (await app.get("/v1/events", params={"phone_number": "447700900123"}, headers=auth)).json()
    assert [e["reference_id"] for e in kept["events"]] == ["KEEP1"]
    # Erasing again finds nothing more and still keeps the STOP.
    again = await (await app.delete(f"/v1/subjects/{SUBJECT}", headers=auth)).json()
    assert again["erased"]["archive"] == 0 and again["erased"]["opt_outs"] == 0
    assert (await (await app.get("/v1/opt-outs/+11234567890", headers=auth)).json())["opted_out"] is True


def test_cli_erase_and_its_errors(loaded, redis_url, database_url):
    env = {**os.environ, "REDIS_URL": redis_url, "DATABASE_URL": database_url}
    run = lambda *a, **extra: subprocess.run([sys.executable, "-m", "tspipe", "erase", *a], env={**env, **extra},
                                             capture_output=True, text=True, timeout=60)
    no_key = run("11234567890")
    assert no_key.returncode == 2 and "TSPIPE_ERASURE_KEY" in no_key.stderr and "Traceback" not in no_key.stderr
    bad = run("hello", TSPIPE_ERASURE_KEY=KEY)
    assert bad.returncode == 2 and "neither a phone number nor an e-mail" in bad.stderr
    done = run("+11234567890", TSPIPE_ERASURE_KEY=KEY)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["erased"]["archive"] >= 8
    assert not [k for k, v in redis_dump(loaded[0]) if mentions(k) or mentions(v)]
