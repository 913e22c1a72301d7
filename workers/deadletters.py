"""The dead-letter store: deliveries, plug-in calls and auto-replies that exhausted their attempts.

One Redis list (keys.DEADLETTER, newest first) of JSON entries in the
DeadLetter shape, so `tspipe dlq` can list, replay one by id, or purge, and
so other modules (the auto-reply task) can LPUSH entries of their own kind
in the same shape. A list rather than a hash because it keeps failure order
and is what any writer can append to with one command.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from typing import Literal

import msgspec
import redis

from workers import keys

Kind = Literal["destination", "plugin", "autoreply"]


class DeadLetter(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    kind: Kind
    target: str  # destination name, plug-in task name, or "autoreply"
    event: msgspec.Raw  # the event (or batch of events) as JSON, exactly as it would have been sent
    error: str
    attempts: int
    failed_at: float  # unix time


class _Loose(msgspec.Struct, kw_only=True):
    """What any writer might have pushed: the DeadLetter fields, or an older {kind, payload, error, attempts}."""

    id: str | None = None
    kind: str = "destination"
    target: str | None = None
    event: msgspec.Raw = msgspec.Raw(b"")  # Raw cannot sit in a union with None; empty means absent
    payload: msgspec.Raw = msgspec.Raw(b"")
    error: str = ""
    attempts: int = 0
    failed_at: float = 0.0


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(_Loose)


def _from_raw(raw: bytes) -> DeadLetter:
    loose = _decoder.decode(raw)
    kind = loose.kind if loose.kind in ("destination", "plugin", "autoreply") else "destination"
    return DeadLetter(
        # An entry without an id gets one derived from its bytes, so --id and removal still work.
        id=loose.id or hashlib.sha256(raw).hexdigest()[:32],
        kind=kind,
        target=loose.target or kind,
        event=loose.event if len(loose.event) else loose.payload if len(loose.payload) else msgspec.Raw(b"null"),
        error=loose.error,
        attempts=loose.attempts,
        failed_at=loose.failed_at,
    )


def new_entry(kind: Kind, target: str, event_json: bytes, error: str, attempts: int) -> DeadLetter:
    return DeadLetter(
        id=uuid.uuid4().hex,
        kind=kind,
        target=target,
        event=msgspec.Raw(event_json),
        error=error[:2000],
        attempts=attempts,
        failed_at=time.time(),
    )


def encode(entry: DeadLetter) -> bytes:
    return _encoder.encode(entry)


def add(client: redis.Redis, entry: DeadLetter) -> None:
    client.lpush(keys.DEADLETTER, _encoder.encode(entry))


def _raw_entries(client: redis.Redis) -> list[tuple[bytes, DeadLetter]]:
    out = []
    for raw in client.lrange(keys.DEADLETTER, 0, -1):
        try:
            out.append((raw, _from_raw(raw)))
        except msgspec.DecodeError:
            continue  # an entry in another shape is left alone, never lost
    return out


def list_entries(client: redis.Redis, target: str | None = None, kind: str | None = None) -> list[DeadLetter]:
    entries = [e for _, e in _raw_entries(client)]
    entries = [e for e in entries if (target is None or e.target == target) and (kind is None or e.kind == kind)]
    return sorted(entries, key=lambda e: e.failed_at)


def remove(client: redis.Redis, entry_ids: list[str]) -> int:
    wanted = set(entry_ids)
    raws = [raw for raw, e in _raw_entries(client) if e.id in wanted]
    if not raws:
        return 0
    pipe = client.pipeline()
    for raw in raws:
        pipe.lrem(keys.DEADLETTER, 1, raw)
    return sum(pipe.execute())


def purge(client: redis.Redis, target: str | None = None) -> int:
    if target is None:
        count = client.llen(keys.DEADLETTER)
        client.delete(keys.DEADLETTER)
        return count
    return remove(client, [e.id for e in list_entries(client, target)])


def unreplayable(entries: list[DeadLetter]) -> dict[str, tuple[int, str]]:
    """Targets this process cannot replay to, with how many entries each holds and why (for the operator)."""
    from workers.destinations import by_name
    from workers.plugins import plugin_names

    plugins = plugin_names()
    missing: dict[str, tuple[int, str]] = {}
    for entry in entries:
        if entry.kind == "destination" and by_name(entry.target) is None:
            why = f"destination {entry.target!r} is not in TSPIPE_DESTINATIONS here (set it as the workers have it)"
        elif entry.kind == "plugin" and entry.target not in plugins:
            why = f"plug-in {entry.target!r} is not installed or not in TSPIPE_PLUGINS here"
        else:
            continue
        count, _ = missing.get(entry.target, (0, why))
        missing[entry.target] = (count + 1, why)
    return missing


def replay(client: redis.Redis, entries: list[DeadLetter]) -> int:
    """Send each entry back through its normal path with a fresh attempt budget, then drop it.

    Removed only after it is re-queued: a crash in between replays it twice,
    which webhook-id deduplication absorbs, rather than losing it. Entries whose
    target is unknown here stay (see unreplayable()); so do deliveries beyond
    their destination's max_queued.
    """
    from workers import delivery_queue
    from workers.destinations import by_name
    from workers.plugins import load_plugins

    plugins = {p.name: p for p in load_plugins()}
    done: list[str] = []
    by_destination: dict[str, list[DeadLetter]] = {}
    app = None
    for entry in entries:
        body = bytes(entry.event)
        if entry.kind == "destination":
            if by_name(entry.target) is not None:
                by_destination.setdefault(entry.target, []).append(entry)
            continue
        if entry.kind == "plugin" and entry.target not in plugins:
            continue
        if app is None:
            from workers.delivery import celery_app

            app = celery_app()
        if entry.kind == "plugin":
            plugin = plugins[entry.target]
            app.send_task(plugin.name, args=(msgspec.json.decode(body),), queue=plugin.queue)
        else:
            app.send_task("tspipe.autoreply", args=(msgspec.json.decode(body),))
        done.append(entry.id)
    batches = [(name, by_name(name).max_queued, [delivery_queue.new_job(bytes(e.event)) for e in group])
               for name, group in by_destination.items()]
    for (name, _, _), taken in zip(batches, delivery_queue.enqueue(client, batches)):
        done += [e.id for e in by_destination[name][:taken]]
    remove(client, done)
    return len(done)
