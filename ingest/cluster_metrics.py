"""The workers' figures on the web process's /metrics, so one scrape covers the whole cluster.

Workers keep their counters in one Redis hash (store.keys.METRICS) whose
fields are complete Prometheus series (`name{labels}`); any number of worker
processes add to the same series, and this module renders them as text
exposition with their TYPE lines, plus the current queue, quarantine,
dead-letter and journal sizes, and per configured destination its delivery
queue (ready, delayed, in flight) and circuit state. A Redis that does not
answer gives `tspipe_cluster_up 0` rather than a failed scrape.

Dead letters are not counted per destination here: they share one list, and
counting by target means reading all of it (up to TSPIPE_DEADLETTER_MAX_BYTES)
on every scrape. `tspipe_webhooks_total{destination, outcome="dead_lettered"}`,
counted by the engine as it dead-letters, gives the rate per destination.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import redis.asyncio as aioredis

from store import archive_backlog, circuit, delivery_queue, keys

HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
TIMEOUT_S = 0.5


def _family(series: str) -> tuple[str, str]:
    """(family name, type) of one series name such as `tspipe_events_total` or `..._bucket`."""
    for suffix in HISTOGRAM_SUFFIXES:
        if series.endswith(suffix):
            return series[: -len(suffix)], "histogram"
    return series, "counter"


def render(fields: dict[bytes, bytes], gauges: dict[str, float]) -> bytes:
    """Counters and histograms from the workers' hash, then the gauges (a name may carry labels: `name{a="b"}`)."""
    families: dict[str, tuple[str, list[str]]] = {}
    for raw_field, raw_value in sorted(fields.items()):
        series = raw_field.decode("utf-8", "replace")
        name = series.split("{", 1)[0]
        family, kind = _family(name)
        families.setdefault(family, (kind, []))[1].append(f"{series} {raw_value.decode()}")
    lines: list[str] = []
    for family, (kind, samples) in families.items():
        lines.append(f"# TYPE {family} {kind}")
        lines.extend(samples)
    gauge_families: dict[str, list[str]] = {}
    for name, value in gauges.items():
        gauge_families.setdefault(name.split("{", 1)[0], []).append(f"{name} {value}")
    for family, samples in gauge_families.items():
        lines.append(f"# TYPE {family} gauge")
        lines.extend(samples)
    return ("\n".join(lines) + "\n").encode()


def destination_gauges(destinations: Sequence[str], answers: list, now: float | None = None) -> dict[str, int]:
    """Per destination, from the answers to the reads cluster_metrics queued for it: its queue by state
    (ready + delayed is what `max_queued` bounds) and its circuit (0 closed, 1 half-open, 2 open)."""
    out: dict[str, int] = {}
    width = len(delivery_queue.DEPTH_STATES) + 1
    for i, name in enumerate(destinations):
        *sizes, open_until = answers[i * width:(i + 1) * width]
        for state, size in zip(delivery_queue.DEPTH_STATES, sizes):
            out[f'tspipe_delivery_queue_depth{{destination="{name}",state="{state}"}}'] = size
        out[f'tspipe_delivery_circuit_state{{destination="{name}"}}'] = circuit.gauge(open_until, now)
    return out


async def cluster_metrics(client: aioredis.Redis, queue: str, destinations: Sequence[str] = ()) -> bytes:
    try:
        async with asyncio.timeout(TIMEOUT_S):
            pipe = client.pipeline(transaction=False)
            pipe.hgetall(keys.METRICS)
            pipe.llen(queue)
            pipe.llen(keys.QUARANTINE)
            pipe.llen(keys.DEADLETTER)
            pipe.zcard(keys.OPTOUT_INDEX)
            pipe.hlen(keys.JOURNAL)
            pipe.llen(keys.JOURNAL_STUCK)
            pipe.get(keys.QUARANTINE_BYTES)
            pipe.get(keys.DEADLETTER_BYTES)
            pipe.zcard(keys.PENDING_INDEX)
            archive_backlog.queue_gauges(pipe)
            ours = len(pipe)  # the answers after these are the destinations'
            for name in destinations:
                delivery_queue.queue_depth(pipe, name)
                circuit.queue_state(pipe, name)
            answers = await pipe.execute()
    except (aioredis.RedisError, OSError, TimeoutError):
        return b"# TYPE tspipe_cluster_up gauge\ntspipe_cluster_up 0\n"
    (fields, depth, quarantined, dead, optouts, journalled, stuck, quarantine_bytes, dead_bytes, pending,
     *backlog) = answers[:ours]
    gauges = {
        "tspipe_cluster_up": 1,
        "tspipe_queue_depth": depth,
        "tspipe_quarantine_size": quarantined,
        "tspipe_deadletter_size": dead,
        "tspipe_optouts": optouts,
        # Batches queued and not yet applied (about the queue depth when healthy), and ones that kept failing.
        "tspipe_journal_batches": journalled,
        "tspipe_journal_stuck": stuck,
        # What the byte caps (TSPIPE_QUARANTINE_MAX_BYTES, TSPIPE_DEADLETTER_MAX_BYTES) are measured against.
        "tspipe_quarantine_bytes": int(quarantine_bytes or 0),
        "tspipe_deadletter_bytes": int(dead_bytes or 0),
        # Messages not final yet, within the status API's 12 h window: what reconciliation may poll.
        "tspipe_pending_messages": pending,
        # The archive's backlog: batches waiting for PostgreSQL, their bytes, the oldest one's age (the lag).
        **archive_backlog.gauges(backlog),
        **destination_gauges(destinations, answers[ours:]),
    }
    return render(fields, gauges)
