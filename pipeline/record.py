"""The queue contract between the ingress and the workers.

The ingress never decodes a callback: it wraps the raw bytes in a Record with
the facts only it knows (when it accepted the body, which route it came in on,
the request id) and ships a list of them as one Celery task message.
"""

from __future__ import annotations

import msgspec

# The Celery task that consumes one batch of records.
INGEST_BATCH_TASK = "tspipe.ingest_batch"


class Record(msgspec.Struct, array_like=True, frozen=True, omit_defaults=True):
    body: bytes
    received_at: float  # Unix time, seconds, when the ingress accepted the body
    channel_hint: str | None = None
    request_id: str = ""
    # W3C traceparent of the callback's POST, only when tracing is on (config/tracing.py); omitted otherwise.
    traceparent: str | None = None


_BATCH_ENCODER = msgspec.msgpack.Encoder()
_BATCH_DECODER = msgspec.msgpack.Decoder(list[Record])


def encode_batch(records: list[Record]) -> bytes:
    return _BATCH_ENCODER.encode(records)


def decode_batch(blob: bytes) -> list[Record]:
    return _BATCH_DECODER.decode(blob)
