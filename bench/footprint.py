"""Redis bytes per tracked message, through the real stack, by key family.

Starts a real Redis, `tspipe web` and `tspipe worker`, posts --messages SMS messages' callbacks
over HTTP, signed (first every message's "sent" status 3002, then every "delivered" 3000, each
message with its own 32-character reference id, as Telesign's are), waits until every callback is
applied, and prints Redis's `used_memory` growth per message next to the `MEMORY USAGE` of every
key, grouped by family (`ts:m`, `ts:pending`, ...). The difference between the two is Redis's
per-key bookkeeping (main and expires dict entries, hash table slots), spread over the messages.

    .venv/bin/python bench/footprint.py                    # 100,000 messages x 2 callbacks
    .venv/bin/python bench/footprint.py --messages 10000   # quicker
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.stack import drive, start_processes, stop_all, wait_drained, wait_healthy  # noqa: E402
from store import message  # noqa: E402
from tspipe.redis_server import RedisServer  # noqa: E402

SENT, DELIVERED = (3002, "Delivered to Gateway"), (3000, "Delivered")


def callback(n: int, status: tuple[int, str], when: datetime) -> bytes:
    """A Messaging API SMS status callback for message n, shaped like Telesign's."""
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    code, description = status
    return json.dumps({
        "reference_id": f"{n:032X}", "external_id": None,
        "status": {"code": code, "description": description, "last_channel": "sms", "updated_on": stamp},
        "channel_status": [{"sms": {"code": code, "description": description,
                                    "reference_id": f"{n:030X}5C", "updated_on": stamp}}],
    }).encode()


def family(key: bytes) -> str:
    """`ts:m`, `ts:pending`, `ts:journal:due`...: the key up to its variable part."""
    text = key.decode("utf-8", "replace")
    if not text.startswith("ts:"):
        return "(broker) " + text.split(":")[0]
    parts = text.split(":")
    return ":".join(parts[:2]) if parts[1] in ("m", "dedup", "outbox", "optout", "autoreply", "rate") else text


def by_family(client: redis.Redis) -> dict[str, tuple[int, int]]:
    """family -> (keys, MEMORY USAGE bytes), every key measured exactly (SAMPLES 0)."""
    sizes: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    batch: list[bytes] = []

    def flush() -> None:
        pipe = client.pipeline(transaction=False)
        for key in batch:
            pipe.memory_usage(key, samples=0)
        for key, used in zip(batch, pipe.execute()):
            entry = sizes[family(key)]
            entry[0] += 1
            entry[1] += used or 0
        batch.clear()

    for key in client.scan_iter(count=5000):
        batch.append(key)
        if len(batch) >= 5000:
            flush()
    flush()
    return {name: (n, used) for name, (n, used) in sizes.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=64, help="requests in flight")
    parser.add_argument("--worker-concurrency", type=int, default=2)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="tspipe-footprint-"))
    server = RedisServer(tmp / "redis", appendonly=False).start()
    port, web, worker, logs = start_processes(tmp, server, args.worker_concurrency)
    base = f"http://127.0.0.1:{port}"
    client = redis.Redis.from_url(server.url)
    try:
        wait_healthy(base, [web, worker])
        time.sleep(1.0)  # the worker's broker bookkeeping keys exist before the baseline is taken
        before = client.info("memory")["used_memory"]
        stats_before = client.memory_stats()
        families_before = by_family(client)
        now = datetime.now(timezone.utc)
        started = time.monotonic()
        statuses: Counter = Counter()
        acked = 0
        for step, status in enumerate((SENT, DELIVERED)):
            items = [("sms", callback(n, status, now + timedelta(seconds=step, microseconds=n)))
                     for n in range(1, args.messages + 1)]
            answered, acked_bodies, _latencies, _elapsed = asyncio.run(drive(base, items, 1e9, args.concurrency))
            statuses.update(answered)
            acked += len(acked_bodies)
        drain = wait_drained(client, "tspipe.ingest", acked, timeout=600)
        elapsed = time.monotonic() - started
        time.sleep(0.5)
        after = client.info("memory")["used_memory"]
        stats = client.memory_stats()
        families = by_family(client)
        lengths = Counter(message.history_lengths(client, [f"{n:032X}" for n in range(1, args.messages + 1)]))
    finally:
        stop_all((web, worker), logs)
        client.close()
        server.stop()

    n = args.messages
    print(f"tspipe bench/footprint.py: {n:,} messages x 2 callbacks through web + worker "
          f"(concurrency {args.concurrency}, worker concurrency {args.worker_concurrency}), "
          f"{os.cpu_count()} CPUs shared with other work; {elapsed:.0f} s, drained {'yes' if drain != float('inf') else 'NO'}")
    print(f"answers {dict(statuses)}; history lengths {dict(lengths)} (every message should have 2)")
    print(f"used_memory grew {after - before:,} bytes: {(after - before) / n:.0f} bytes per message")
    print(f"{'family':<28}{'keys':>10}{'MEMORY USAGE':>16}{'per message':>14}")
    measured = 0
    for name in sorted(families, key=lambda k: -families[k][1]):
        keys_n, used = families[name]
        grown = used - families_before.get(name, (0, 0))[1]
        measured += grown
        print(f"{name:<28}{keys_n:>10,}{used:>16,}{grown / n:>14.1f}")
    print(f"{'(dict entries, expires, slots)':<28}{'':>10}{after - before - measured:>16,}"
          f"{(after - before - measured) / n:>14.1f}")

    def grew(name: str) -> int:
        def value(snapshot: dict) -> int:
            found = snapshot.get(name)
            if found is None and "." in name:  # per-db figures sit under "db.0"
                db, _, field = name.partition(":")
                found = (snapshot.get(db) or {}).get(field.encode(), (snapshot.get(db) or {}).get(field))
            return int(found or 0)
        return value(stats) - value(stats_before)

    clients, scripts = grew("clients.normal"), grew("lua.caches")
    tables = grew("db.0:overhead.hashtable.main") + grew("db.0:overhead.hashtable.expires")
    print(f"of the growth: clients' buffers {clients:,}, Lua script cache {scripts:,}, "
          f"main + expires hash tables {tables:,} ({tables / n:.1f} per message)")
    print(f"per message without clients' buffers and scripts: {(after - before - clients - scripts) / n:.0f} bytes")


if __name__ == "__main__":
    main()
