"""Celery tasks. Thin on purpose: unpack, call workers/ and pipeline/ functions.

`tspipe.ingest_batch` never fails a batch because of one body: a body that
does not decode is quarantined with its reason, and the rest is applied.
Redis errors do raise. Celery then acknowledges the failed message, but the
batch stays in the journal (store/journal.py) until it is applied, and the
journal sweep queues it again; the store's dedup makes a second pass
side-effect-free.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import time
from contextlib import nullcontext
from datetime import datetime, timezone

import msgspec
import structlog

import pipeline
from config import get_settings, tracing
from config.keywords import keyword_map
from pipeline.keywords import DEFAULT_MAP
from pipeline.errors import InvalidCallback
from pipeline.event import Event
from pipeline.record import INGEST_BATCH_TASK, Record, decode_batch
from store import journal
from store.archive_backlog import Backlog
from store.quarantine import QuarantineEntry
from store.state import Store
from workers import actions, fanout
from workers.app import app
from workers.telesign_client import TelesignError, send_reply

log = structlog.get_logger("tspipe.worker")

AUTOREPLY_TASK = "tspipe.autoreply"
JOURNAL_SWEEP_TASK = "tspipe.journal_sweep"
AUTOREPLY_MAX_RETRIES = 5

_store: Store | None = None


def get_store() -> Store:
    """One store (and Redis connection pool) per worker process, built on first use after fork."""
    global _store
    if _store is None:
        _store = Store.from_settings(get_settings())
    return _store


def reset_store() -> None:
    global _store, _backlog
    _store = None
    _backlog = None


_backlog: Backlog | None = None


def archive_backlog(store: Store) -> Backlog | None:
    """The archive's backlog on the store's Redis, or None when the archive is off (DATABASE_URL unset)."""
    global _backlog
    settings = get_settings()
    if not settings.database_url:
        return None
    if _backlog is None or _backlog.client is not store.client:
        _backlog = Backlog(store.client, settings.archive_backlog_max_bytes)
    return _backlog


def queue_for_archive(store: Store, blob: bytes, records: int, source: str = "callback") -> None:
    """Hand the batch to the archive writer through Redis (see store/archive_backlog.py); never waits on PostgreSQL."""
    backlog = archive_backlog(store)
    if backlog is not None and not backlog.add(blob, records, source):
        log.error("archive backlog full: batch not archived", records=records,
                  hint="the archive writer (tspipe archive) is behind or PostgreSQL is down; see tspipe_archive_dropped_total")


def _quarantine_entry(record: Record, reason: str) -> QuarantineEntry:
    try:
        text, b64 = record.body.decode("utf-8"), None
    except UnicodeDecodeError:
        text, b64 = None, base64.b64encode(record.body).decode()
    return QuarantineEntry(
        id=hashlib.sha256(record.body).hexdigest()[:16],
        reason=reason,
        received_at=record.received_at,
        quarantined_at=time.time(),
        request_id=record.request_id,
        channel_hint=record.channel_hint,
        body=text,
        body_b64=b64,
    )


def decode_records(records: list[Record]) -> tuple[list[Event], list[QuarantineEntry]]:
    """Decode every record with the sender's keyword map; failures become quarantine entries instead of exceptions."""
    events: list[Event] = []
    bad: list[QuarantineEntry] = []
    decode = pipeline.decode
    keywords = keyword_map(get_settings().keywords)
    keywords = None if keywords is DEFAULT_MAP else keywords  # decode's own fast path for the default map
    for record in records:
        try:
            received = datetime.fromtimestamp(record.received_at, tz=timezone.utc)
            events.append(decode(record.body, channel_hint=record.channel_hint, received_at=received,
                                 keywords=keywords))
        except InvalidCallback as exc:
            bad.append(_quarantine_entry(record, str(exc) or type(exc).__name__))
        except Exception as exc:  # a decoder bug must not poison the whole batch either
            bad.append(_quarantine_entry(record, f"decoder error: {type(exc).__name__}: {exc}"))
    return events, bad


def apply_and_fan_out(store: Store, events: list[Event], spans=None) -> list[Event]:
    """Apply, fan out, then confirm: a crash in between re-fans-out on redelivery, never drops.

    Returns the newly applied events. Duplicates whose fan-out was never
    confirmed are fanned out again (at-least-once; receivers dedupe on webhook-id).
    `spans` (workers/traced.py) is given only when tracing is on.
    """
    if not fanout.has_targets():
        with spans.apply(events) if spans is not None else nullcontext():
            return store.apply_batch_with_outbox(events, outbox=False).new
    with spans.apply(events) if spans is not None else nullcontext():
        result = store.apply_batch_with_outbox(events)
    fanout.fan_out(result.new + result.unconfirmed, store.client, spans.fan_out if spans is not None else None,
                   current=result.current)
    store.confirm_fanout(result.new + result.unconfirmed)
    return result.new


def process_batch(blob: bytes, store: Store | None = None) -> list[Event]:
    """Decode, quarantine, apply, queue auto-replies, fan out. Returns the newly applied events."""
    store = store or get_store()
    records = decode_batch(blob)
    if tracing.active():
        from workers.traced import BatchSpans

        spans = BatchSpans(records)
        try:
            return _process(store, blob, records, spans)
        finally:
            spans.end()
    return _process(store, blob, records, None)


def _process(store: Store, blob: bytes, records: list[Record], spans) -> list[Event]:
    events, bad = decode_records(records) if spans is None else spans.decode(records, decode_records)
    # Before applying: a worker killed after applying would otherwise leave the batch applied but
    # never archived (its redelivery is all duplicates). The archive is idempotent on event_id.
    if events:
        queue_for_archive(store, blob, len(records))
    store.quarantine(bad)
    applied = apply_and_fan_out(store, events, spans)
    # Replies are queued for every event that asks for one, duplicates included:
    # the auto-reply task claims the event id, so only one ever sends, and a
    # crash between apply and enqueue cannot lose the reply.
    for reply in actions.autoreplies_for(events, actions.load_autoreplies(get_settings().autoreplies)):
        autoreply.delay(msgspec.to_builtins(reply))
    _log_batch(events, applied, bad)
    return applied


def _log_batch(events: list[Event], applied: list[Event], bad: list[QuarantineEntry]) -> None:
    """One line per callback stage: quarantined (warning), applied or duplicate (debug, for volume)."""
    for entry in bad:
        log.warning("callback quarantined", quarantine_id=entry.id, request_id=entry.request_id, reason=entry.reason)
    # Per-callback lines only when debug is on: their arguments cost ~1 µs per event to build.
    if log.is_enabled_for(logging.DEBUG):
        applied_ids = {e.event_id for e in applied}
        for event in events:
            log.debug(
                "callback applied" if event.event_id in applied_ids else "callback duplicate",
                event_id=event.event_id, reference_id=event.reference_id, kind=event.kind.value,
                outcome=event.status.outcome.value, channel=event.channel.value if event.channel else None,
                phone_number=event.phone_number,
            )
    log.info("batch applied", records=len(events) + len(bad), applied=len(applied),
             duplicates=len(events) - len(applied), quarantined=len(bad))


@app.task(name=INGEST_BATCH_TASK, bind=True, acks_late=True, reject_on_worker_lost=True)
def ingest_batch(self, blob: bytes) -> int:
    applied = len(process_batch(blob))
    if self.request.id:
        journal.forget(get_store().client, self.request.id)
    return applied


@app.task(name=JOURNAL_SWEEP_TASK)
def journal_sweep() -> int:
    """Beat: queue again the batches lost between Redis and a worker (see store/journal.py)."""
    settings = get_settings()
    requeued, in_flight, gave_up = journal.Sweep(
        get_store().client, settings.queue, grace=settings.journal_grace_seconds
    ).run()
    if requeued:
        log.warning("journal: batches lost in transit queued again", batches=requeued, still_queued=in_flight)
    if gave_up:
        log.error("journal: batches kept failing; their callbacks go to the quarantine", batches=gave_up)
    if moved := quarantine_stuck(get_store()):
        log.error("journal: callbacks of failing batches quarantined; `tspipe quarantine replay` queues them again",
                  callbacks=moved)
    return requeued


STUCK_REASON = "its batch failed every worker that took it (re-queued {n} times); replay once fixed"


def quarantine_stuck(store: Store) -> int:
    """Move the callbacks of batches the journal gave up on into the quarantine; returns how many.

    The quarantine is bounded in bytes and can be listed and replayed, where
    the stuck list was neither. Quarantined first, released second: a crash in
    between quarantines a batch twice, never zero times."""
    moved = 0
    for message in journal.stuck(store.client):
        try:
            records = decode_batch(journal.batch_blob(message))
            entries = [_quarantine_entry(r, STUCK_REASON.format(n=journal.MAX_REQUEUES)) for r in records]
        except (ValueError, msgspec.DecodeError) as exc:
            entries = [_quarantine_entry(Record(message, time.time()), f"unreadable queue message: {exc}")]
        store.quarantine(entries)
        journal.release_stuck(store.client, message)
        moved += len(entries)
    return moved


@app.task(
    name=AUTOREPLY_TASK,
    bind=True,
    autoretry_for=(TelesignError,),
    retry_backoff=1,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=AUTOREPLY_MAX_RETRIES,
)
def autoreply(self, payload: dict) -> str:
    """Send one auto-reply, exactly once per event id.

    The claim (store/state.py) lets one task send: duplicates of the event
    (Telesign retries, a redelivered batch) queue tasks whose claim is
    refused. Once sent, the claim says so, and a redelivery of this very task
    sends nothing; when it gives up, the claim is released with the dead
    letter, so `tspipe dlq replay` (a new task id) can claim and send it.
    """
    settings = get_settings()
    store = get_store()
    event_id, claimer = payload["event_id"], self.request.id or payload["event_id"]
    if not store.claim_autoreply(event_id, claimer, settings.dedup_ttl_seconds):
        return "duplicate"
    if not settings.telesign_customer_id or not settings.telesign_api_keys:
        _give_up(store, payload, claimer, "no Telesign credentials", 0)
        return "no-credentials"
    try:
        send_reply(
            settings.telesign_api_url, settings.telesign_customer_id, settings.telesign_api_keys[0],
            channel=payload.get("channel"), phone_number=payload.get("phone_number"),
            email=payload.get("email"), message=payload["message"],
        )
    except TelesignError as exc:
        if self.request.retries >= self.max_retries:
            _give_up(store, payload, claimer, str(exc), self.request.retries + 1)
            return "dead-lettered"
        raise
    store.autoreply_sent(event_id, claimer)
    return "sent"


def _give_up(store: Store, payload: dict, claimer: str, error: str, attempts: int) -> None:
    """Dead-letter the reply, then free its claim.

    A crash in between redelivers this task (late acks) with its own id, which still
    holds the claim: it tries again and ends here again. A second dead letter of the
    same reply is harmless, since only one replayed task can claim it.
    """
    store.dead_letter({"kind": "autoreply", "payload": payload, "error": error, "attempts": attempts})
    store.release_autoreply(payload["event_id"], claimer)
