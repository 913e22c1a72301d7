"""Prometheus metrics of one ingress app, in its own registry.

A registry per app (not the global default) because tests and benchmarks
create many apps in one process, and the global registry refuses duplicates.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from ingest.spool import Spool


class IngestMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        # Plain ints, turned into a counter family only when /metrics is scraped.
        self.request_counts: dict[tuple[str, int], int] = {}
        self.registry.register(_RequestCounts(self.request_counts))
        self.batch_size = Histogram(
            "tspipe_ingest_batch_size", "Callbacks per durable write.",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024), registry=self.registry,
        )
        self.write_latency = Histogram(
            "tspipe_ingest_write_seconds", "Time to store one batch, by where it went (redis or spool).", ("store",),
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5), registry=self.registry,
        )
        self.spool_bytes = Gauge("tspipe_ingest_spool_bytes", "Bytes waiting in the local spool.", registry=self.registry)
        self.signature_failures = Counter(
            "tspipe_ingest_signature_failures", "Callbacks refused for their signature, by reason.", ("reason",),
            registry=self.registry,
        )
        self._write_latency_by_store: dict[str, Histogram] = {}
        self.redis_up = Gauge("tspipe_ingest_redis_up", "1 when the last Redis write or probe succeeded.",
                              registry=self.registry)
        self.malformed_requests = Counter(
            "tspipe_ingest_malformed_requests", "Requests aiohttp could not parse as HTTP (answered 400), by error.",
            ("error",), registry=self.registry,
        )

    def count_request(self, route: str, status: int) -> None:
        """Count one request: a dict update, ~0.1 us, where a labelled prometheus Counter costs ~0.4 us.

        Only ever called from the event loop thread, so it needs no lock.
        """
        key = (route, status)
        self.request_counts[key] = self.request_counts.get(key, 0) + 1


    def observe_write(self, store: str, seconds: float) -> None:
        """One batch write's latency; the labelled child is cached (labels() costs more than observe())."""
        child = self._write_latency_by_store.get(store)
        if child is None:
            child = self._write_latency_by_store[store] = self.write_latency.labels(store)
        child.observe(seconds)


class SpoolDamage(Collector):
    """The spool's set-aside counts (ingest/spool.py keeps plain ints) as counters with a reason label."""

    def __init__(self, spool: "Spool") -> None:
        self._spool = spool

    def collect(self) -> Iterator[CounterMetricFamily]:
        ranges = CounterMetricFamily("tspipe_ingest_spool_damaged",
                                     "Spool byte ranges set aside under damaged/ instead of replayed, by reason.",
                                     labels=("reason",))
        for reason, count in sorted(self._spool.damaged.items()):
            ranges.add_metric((reason,), float(count))
        yield ranges
        yield CounterMetricFamily("tspipe_ingest_spool_damaged_bytes", "Bytes set aside from the spool.",
                                  value=float(self._spool.damaged_bytes))


class _RequestCounts(Collector):
    """Exposes IngestMetrics.request_counts as the counter tspipe_http_requests_total{route, status}."""

    def __init__(self, counts: dict[tuple[str, int], int]) -> None:
        self._counts = counts

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily("tspipe_http_requests", "HTTP requests by route and status.",
                                     labels=("route", "status"))
        for (route, status), count in sorted(self._counts.items()):
            family.add_metric((route, str(status)), float(count))
        yield family
