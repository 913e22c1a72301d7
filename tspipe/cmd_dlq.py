"""`tspipe dlq`: list, replay and purge dead letters (deliveries, plug-in calls, auto-replies that gave up)."""

from __future__ import annotations

import datetime as dt
import sys

import click
import msgspec

from pipeline.errors import TspipeError
from tspipe.context import settings_or_exit


def _client():
    from store import connection

    return connection.connect(settings_or_exit("dlq", need_redis=True).redis_url)


@click.group("dlq")
def dlq() -> None:
    """Dead letters: events a destination or plug-in never accepted."""


@dlq.command("list")
@click.option("--destination", "target", help="Only entries for this destination or plug-in.")
@click.option("--json", "as_json", is_flag=True, help="One JSON entry per line.")
@click.option("--limit", "-n", type=click.IntRange(min=1), default=None, help="Most entries shown (default: all, read a page at a time).")
@click.option("--offset", type=click.IntRange(min=0), default=0, show_default=True, help="Matching entries skipped first.")
def list_cmd(target: str | None, as_json: bool, limit: int | None, offset: int) -> None:
    """List dead letters, oldest first."""
    import itertools

    from store import deadletters

    stop = None if limit is None else offset + limit
    shown = 0
    for entry in itertools.islice(deadletters.iter_entries(_client(), target), offset, stop):
        shown += 1
        if as_json:
            click.echo(msgspec.json.encode(entry).decode())
        else:
            when = dt.datetime.fromtimestamp(entry.failed_at, dt.timezone.utc).isoformat(timespec="seconds")
            event_id, webhook_id = _ids(entry)
            click.echo(f"{entry.id}  {entry.kind:<11} {entry.target:<20} event={event_id}  webhook-id={webhook_id}  "
                       f"attempts={entry.attempts}  {when}  {entry.error}")
    if not shown and not as_json:
        where = f" for {target}" if target else ""
        click.echo(f"no dead letters{where}" if offset == 0 else f"no dead letters{where} past the first {offset}")


def _ids(entry) -> tuple[str, str]:
    """The event id (first of a batch, with how many) and the webhook-id its delivery carries."""
    from pipeline.webhooks import batch_id, event_ids

    body = bytes(entry.event)
    try:
        ids = event_ids(body)
    except msgspec.DecodeError:
        return "-", "-"
    shown = ids[0] if len(ids) == 1 else f"{ids[0]} (+{len(ids) - 1})"
    return shown, batch_id(ids) if entry.kind == "destination" else "-"


@dlq.command("replay")
@click.option("--destination", "target", help="Only entries for this destination or plug-in.")
@click.option("--id", "entry_ids", multiple=True, help="Only this entry (repeatable).")
@click.option("--all", "replay_all", is_flag=True, help="Every entry (required when neither filter is given).")
def replay_cmd(target: str | None, entry_ids: tuple[str, ...], replay_all: bool) -> None:
    """Send dead letters through the normal delivery path again, with a fresh attempt budget."""
    from store import deadletters
    from workers.app import get_app
    from workers.replay import replay, unreplayable

    if not (target or entry_ids or replay_all):
        raise click.UsageError("say which entries: --destination NAME, --id ID or --all")
    try:
        get_app()  # plug-in and auto-reply entries are sent as Celery tasks
        client = _client()
        entries = deadletters.list_entries(client, target)
        if entry_ids:
            entries = [e for e in entries if e.id in entry_ids]
        missing = unreplayable(entries)
        count = replay(client, entries)
    except TspipeError as exc:
        raise click.ClickException(str(exc)) from None
    for name, (skipped, why) in missing.items():
        click.echo(f"tspipe dlq replay: {skipped} entr{'y' if skipped == 1 else 'ies'} for {name!r} kept: {why}", err=True)
    click.echo(f"replayed {count} of {len(entries)}", err=True)
    if count < len(entries):
        sys.exit(1)


@dlq.command("purge")
@click.option("--destination", "target", help="Only entries for this destination or plug-in.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def purge_cmd(target: str | None, yes: bool) -> None:
    """Delete dead letters for good."""
    from store import deadletters

    if not yes:
        click.confirm("Delete these dead letters for good?", abort=True)
    click.echo(f"purged {deadletters.purge(_client(), target)}", err=True)
