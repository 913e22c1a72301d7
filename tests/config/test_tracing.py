"""Traces end to end: `tspipe web` and `tspipe worker` export to a real OTLP/HTTP receiver, and the spans connect.

The receiver is an in-process HTTP server that decodes the protobuf
(ExportTraceServiceRequest) the OpenTelemetry exporter posts. One callback
goes in through the real ingress, is applied by a real worker process and
delivered to a real destination; its trace must run from the POST through
decode, apply and fan-out to the delivery engine's span and its HTTP POST,
and the batch span must link the callback.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from config import tracing
from tests.conftest import wait_healthy
from tests.faults.support import stop_processes
from tests.workers.delivery_support import HttpServer, wait_for
from tests.workers.test_delivery import dest, ok
from tspipe.redis_server import free_port

pytest.importorskip("opentelemetry.proto", reason="the otel extra is not installed")
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest  # noqa: E402

TSPIPE = str(Path(sys.executable).with_name("tspipe"))
REFERENCE_ID = "5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A"
BODY = json.dumps({
    "reference_id": REFERENCE_ID, "sub_resource": "sms", "phone_number": "15558675310",
    "status": {"code": 200, "description": "Delivered to handset", "updated_on": "2026-11-25T10:00:00.000000Z"},
}).encode()


class Receiver:
    """Spans posted to /v1/traces, decoded: span id -> (name, trace id, parent span id, linked span ids, service)."""

    def __init__(self) -> None:
        self.spans: dict[str, tuple[str, str, str, list[str], str]] = {}

    async def handle(self, request: web.Request) -> web.Response:
        if request.path != "/v1/traces":
            return web.Response(status=404)
        export = ExportTraceServiceRequest.FromString(await request.read())
        for resource_spans in export.resource_spans:
            service = next((a.value.string_value for a in resource_spans.resource.attributes
                            if a.key == "service.name"), "")
            for scope in resource_spans.scope_spans:
                for span in scope.spans:
                    self.spans[span.span_id.hex()] = (span.name, span.trace_id.hex(), span.parent_span_id.hex(),
                                                      [link.span_id.hex() for link in span.links], service)
        return web.Response(status=200)


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([TSPIPE, *args], env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)


def test_tracing_is_off_without_an_endpoint():
    assert not tracing.wanted() and not tracing.active()


async def test_one_trace_from_callback_to_delivery(redis_url, tmp_path):
    receiver = Receiver()
    port = free_port()
    with HttpServer(receiver.handle) as collector, HttpServer(ok) as destination:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("TSPIPE_", "OTEL_", "DATABASE_URL"))},
            "REDIS_URL": redis_url, "PORT": str(port), "TSPIPE_HOST": "127.0.0.1",
            "TSPIPE_DATA_DIR": str(tmp_path / "data"), "TSPIPE_LOG_FORMAT": "json",
            "TSPIPE_DESTINATIONS": json.dumps([dest("hooks", destination)]),
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url, "OTEL_BSP_SCHEDULE_DELAY": "100",
        }
        web_proc = start(["web"], env, tmp_path / "web.log")
        worker = start(["worker", "--concurrency", "1"], env, tmp_path / "worker.log")
        engine = start(["deliver"], env, tmp_path / "deliver.log")
        try:
            await wait_healthy(f"http://127.0.0.1:{port}", web_proc)
            async with aiohttp.ClientSession() as session:
                async with session.post(f"http://127.0.0.1:{port}/callbacks/sms", data=BODY) as response:
                    assert response.status == 200
            assert await asyncio.to_thread(wait_for, lambda: len(destination.calls) == 1, 60)
            assert await asyncio.to_thread(wait_for, lambda: _names(receiver) >= EXPECTED, 30), _names(receiver)
        finally:
            stop_processes(web_proc, worker, engine)

    spans = receiver.spans
    post = next(i for i, s in spans.items() if s[0].startswith("POST") and s[4] == "tspipe-web" and not s[2])
    trace_id = spans[post][1]
    in_trace = {i: s for i, s in spans.items() if s[1] == trace_id}
    names = {s[0] for s in in_trace.values()}
    assert {"tspipe.decode", "tspipe.apply", "tspipe.fan_out", "tspipe.deliver"} <= names, names
    # Connected: every span of the trace but its root has its parent in the trace.
    for span_id, (name, _, parent, _, _) in in_trace.items():
        assert span_id == post or parent in in_trace, f"{name} has no parent in the trace"
    # The delivery engine's POST to the destination (aiohttp client) is in the callback's trace too.
    deliver = next(i for i, s in in_trace.items() if s[0] == "tspipe.deliver")
    assert in_trace[deliver][4] == "tspipe-deliver"
    assert any(s[2] == deliver and s[0].startswith("POST") for s in in_trace.values())
    # The batch span (in the worker's Celery task trace) links the callback.
    batch = next(s for s in spans.values() if s[0] == "tspipe.batch")
    assert post in batch[3]
    assert next(s for s in in_trace.values() if s[0] == "tspipe.decode")[4] == "tspipe-worker"


EXPECTED = {"tspipe.batch", "tspipe.decode", "tspipe.apply", "tspipe.fan_out", "tspipe.deliver"}


def _names(receiver: Receiver) -> set[str]:
    return {s[0] for s in list(receiver.spans.values())}
