"""`tspipe quarantine list|show ID|purge`: look at and clear bodies that did not decode.

Quarantined bodies are kept so a decoder fix can be checked against the real
payloads that failed; this command is how an operator finds them.
"""

from __future__ import annotations

import base64
import sys
from datetime import datetime, timezone

import click
import redis

from tspipe.context import settings_or_exit


def _store(settings=None):
    settings = settings or settings_or_exit("quarantine", need_redis=True)
    from store.state import Store

    return Store.from_settings(settings)


def _when(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _run(func):
    try:
        return func()
    except redis.RedisError as exc:
        click.echo(f"tspipe: cannot reach Redis: {exc}", err=True)
        sys.exit(1)


@click.group()
def quarantine() -> None:
    """Bodies that failed to decode, with the reason."""


@quarantine.command("list")
@click.option("--limit", "-n", type=click.IntRange(min=1), default=50, show_default=True, help="Most entries shown, newest first.")
@click.option("--offset", type=click.IntRange(min=0), default=0, show_default=True, help="Newest entries skipped first (the next page).")
def list_(limit: int, offset: int) -> None:
    """List quarantined bodies, newest first, a page at a time."""
    entries = _run(lambda: _store().quarantined(limit, offset))
    if not entries:
        click.echo("quarantine is empty" if offset == 0 else f"no entries past the first {offset}")
        return
    for e in entries:
        click.echo(f"{e.id}  {_when(e.received_at)}  {e.reason}")


@quarantine.command()
@click.argument("entry_id")
def show(entry_id: str) -> None:
    """Show one quarantined body and why it failed."""
    from store import quarantine as stored

    e = _run(lambda: stored.find(_store().client, entry_id))
    if e is None:
        click.echo(f"tspipe: no quarantined body with id {entry_id!r}", err=True)
        sys.exit(1)
    click.echo(f"id:          {e.id}\nreason:      {e.reason}\nreceived_at: {_when(e.received_at)}")
    click.echo(f"request_id:  {e.request_id or '-'}\nchannel:     {e.channel_hint or '-'}")
    if e.body is not None:
        click.echo("body:\n" + e.body)
    else:
        click.echo(f"body (not UTF-8, {len(base64.b64decode(e.body_b64 or ''))} bytes, base64):\n{e.body_b64}")


@quarantine.command()
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def purge(yes: bool) -> None:
    """Delete every quarantined body."""
    if not yes:
        click.confirm("Delete every quarantined body?", abort=True)
    count = _run(lambda: _store().purge_quarantine())
    click.echo(f"purged {count} quarantined bod{'y' if count == 1 else 'ies'}")


@quarantine.command()
@click.argument("entry_ids", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Replay every quarantined body.")
@click.option("--limit", type=click.IntRange(min=1), default=10_000, show_default=True,
              help="Most bodies replayed in one run, oldest first.")
def replay(entry_ids: tuple[str, ...], everything: bool, limit: int) -> None:
    """Queue quarantined bodies again, as the ingress would, and take them off the quarantine.

    For after a fix: a decoder that now reads a body, or a worker bug that made a
    whole batch fail. A body that still fails is quarantined again, with today's reason."""
    if not entry_ids and not everything:
        click.echo("tspipe: name the entries to replay (ids from `tspipe quarantine list`) or pass --all", err=True)
        sys.exit(2)
    settings = settings_or_exit("quarantine", need_redis=True)
    import uuid

    from ingest.task_message import ingest_batch_message
    from pipeline.record import Record, encode_batch
    from store import journal
    from store import quarantine as stored

    def run() -> tuple[int, set[str]]:
        client = _store(settings).client
        found = stored.matching(client, None if everything else set(entry_ids), limit)
        for start in range(0, len(found), 256):
            chunk = found[start:start + 256]
            records = [Record(stored.body_of(e), e.received_at, e.channel_hint, e.request_id) for _, e in chunk]
            task_id = str(uuid.uuid4())
            message = ingest_batch_message(encode_batch(records), settings.queue, task_id)
            journal.enqueue(client, settings.queue, task_id, message, settings.journal_grace_seconds)
            stored.remove(client, [raw for raw, _ in chunk])  # queued first, removed second: never neither
        return len(found), {e.id for _, e in found}

    replayed, ids = _run(run)
    click.echo(f"queued {replayed} quarantined bod{'y' if replayed == 1 else 'ies'} again for the workers")
    if missing := set(() if everything else entry_ids) - ids:
        click.echo(f"tspipe: no quarantined body with id {', '.join(map(repr, sorted(missing)))}", err=True)
        sys.exit(1)
