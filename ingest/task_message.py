"""The bytes Celery + kombu would LPUSH for `tspipe.ingest_batch(blob)`, built without them.

`app.send_task()` costs ~0.5 ms of CPU per batch (a redis client object per
publish, routing, option merging) and is synchronous, so the ingress had to
run it on a thread and pay GIL hand-offs for every batch. The message itself
is plain data: Celery's task protocol 2 (headers + msgpack'd [args, kwargs,
embed]) inside kombu's Redis-transport envelope (JSON, body base64). This
module builds exactly that, so the ingress can LPUSH it from the event loop
with one reused async client. tests/ingest/test_task_message.py checks it
field by field against what `send_task` produces and has a real Celery
worker consume it; change both together if Celery's format ever moves.
"""

from __future__ import annotations

import os
import socket
import uuid

import msgspec

from pipeline.record import INGEST_BATCH_TASK
from store.serialization import CONTENT_ENCODING, CONTENT_TYPE, dumps

# Celery's own defaults for a task sent with no options; "origin" is Celery's anon_nodename().
_HEADERS = {
    "lang": "py",
    "task": INGEST_BATCH_TASK,
    "id": None,
    "shadow": None,
    "eta": None,
    "expires": None,
    "group": None,
    "group_index": None,
    "retries": 0,
    "timelimit": [None, None],
    "root_id": None,
    "parent_id": None,
    # Celery would saferepr() the whole blob here; the batch is opaque to humans anyway.
    "argsrepr": "(<batch>,)",
    "kwargsrepr": "{}",
    "origin": f"gen{os.getpid()}@{socket.gethostname()}",
    "ignore_result": None,
    "replaced_task_nesting": 0,
    "stamped_headers": None,
    "stamps": {},
}
_EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
# Celery's per-process reply queue id; unused here (results are ignored), kept so the shape matches.
_REPLY_TO = str(uuid.uuid3(uuid.NAMESPACE_OID, _HEADERS["origin"]))
# msgspec writes a bytes value as its base64 string, which is what kombu's envelope
# holds, in one C pass; json.dumps spent ~2.5 us per callback escaping that string.
_JSON = msgspec.json.Encoder()


def ingest_batch_message(blob: bytes, queue: str, task_id: str | None = None) -> bytes:
    """One `tspipe.ingest_batch(blob)` task message for the Redis list named `queue`."""
    task_id = task_id or str(uuid.uuid4())
    headers = _HEADERS.copy()
    headers["id"] = headers["root_id"] = task_id
    return _JSON.encode({
        "body": dumps(((blob,), {}, _EMBED)),
        "content-encoding": CONTENT_ENCODING,
        "content-type": CONTENT_TYPE,
        "headers": headers,
        "properties": {
            "correlation_id": task_id,
            "reply_to": _REPLY_TO,
            "argsrepr": "(<batch>,)",
            "kwargsrepr": "{}",
            "delivery_mode": 2,
            "delivery_info": {"exchange": "", "routing_key": queue},
            "priority": 0,
            "body_encoding": "base64",
            "delivery_tag": str(uuid.uuid4()),
        },
    })
