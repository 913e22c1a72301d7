"""Prometheus metrics of one ingress app, in its own registry.

A registry per app (not the global default) because tests and benchmarks
create many apps in one process, and the global registry refuses duplicates.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class IngestMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "tspipe_http_requests", "HTTP requests by route and status.", ("route", "status"), registry=self.registry
        )
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
        self._request_children: dict[tuple[str, int], Counter] = {}
        self.redis_up = Gauge("tspipe_ingest_redis_up", "1 when the last Redis write or probe succeeded.",
                              registry=self.registry)

    def count_request(self, route: str, status: int) -> None:
        """Count one request; the labelled child is cached because labels() costs more than the handler."""
        child = self._request_children.get((route, status))
        if child is None:
            child = self._request_children[(route, status)] = self.requests.labels(route, str(status))
        child.inc()
