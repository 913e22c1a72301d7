"""The msgpack body codec of tspipe's Celery messages, backed by msgspec.

Batches carry raw callback bodies as bytes, which JSON cannot hold without
base64 bloat; msgspec's msgpack is also several times faster than kombu's
default. Both ends of the queue use it under the name "msgspec": the ingress
builds messages with it (ingest/task_message.py) without importing Celery,
and workers/app.py registers `dumps`/`loads` with kombu.
"""

from __future__ import annotations

import msgspec

SERIALIZER = "msgspec"
CONTENT_TYPE = "application/x-tspipe-msgpack"
CONTENT_ENCODING = "binary"

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder()


def dumps(obj: object) -> bytes:
    return _encoder.encode(obj)


def loads(data: bytes | str) -> object:
    if isinstance(data, str):  # pragma: no cover - kombu hands bytes for binary content types
        data = data.encode("latin-1")
    return _decoder.decode(data)
