"""`tspipe events search ...`: GET /v1/events on the command line, straight against the archive.

Prints one event per line (JSON Lines), newest first, following the cursor
until --limit events are printed (all of them with --all); the next cursor,
when there is one, goes to stderr so the output stays pipeable to jq.
"""

from __future__ import annotations

import sys

import click
import msgspec

from tspipe.context import settings_or_exit


@click.group("events")
def events_group() -> None:
    """Search the event archive (DATABASE_URL)."""


@events_group.command("search")
@click.option("--phone-number", help="E.164, any spelling (+1 123-456-7890).")
@click.option("--email")
@click.option("--reference-id")
@click.option("--kind", help="delivery, read, verify or inbound.")
@click.option("--outcome", help="delivered, read, pending, failed, blocked, rejected, unknown or received.")
@click.option("--channel", help="sms, mms, rcs, viber, whatsapp or email.")
@click.option("--since", help="ISO 8601, on occurred_at.")
@click.option("--until", help="ISO 8601, on occurred_at.")
@click.option("--limit", type=int, default=100, show_default=True, help="Most events to print.")
@click.option("--all", "everything", is_flag=True, help="Every match, however many.")
@click.option("--cursor", help="Start after this next_cursor.")
@click.option("--raw", is_flag=True, help="Include each body exactly as received.")
def search_command(phone_number, email, reference_id, kind, outcome, channel, since, until, limit, everything,
                   cursor, raw) -> None:
    """Print the matching events, newest first, one JSON object per line."""
    import psycopg

    from archive import search

    settings = settings_or_exit("events search")
    if not settings.database_url:
        click.echo("tspipe events search: DATABASE_URL is not set (the archive is off)", err=True)
        sys.exit(2)
    params = {"phone_number": phone_number, "email": email, "reference_id": reference_id, "kind": kind,
              "outcome": outcome, "channel": channel, "since": since, "until": until, "cursor": cursor,
              "raw": "1" if raw else None}
    params = {k: v for k, v in params.items() if v is not None}
    wanted = None if everything else limit
    if wanted is not None and wanted < 1:
        click.echo("tspipe events search: --limit must be at least 1", err=True)
        sys.exit(2)
    printed = 0
    try:
        with psycopg.connect(settings.database_url, connect_timeout=5) as conn:
            while True:
                page_size = search.LIMIT_MAX if wanted is None else min(search.LIMIT_MAX, wanted - printed)
                query = search.parse_query({**params, "limit": str(page_size)})
                page = msgspec.json.decode(search.search(conn, query))
                for event in page["events"]:
                    click.echo(msgspec.json.encode(event).decode())
                printed += len(page["events"])
                if page["next_cursor"]:
                    params["cursor"] = page["next_cursor"]
                else:
                    params.pop("cursor", None)
                if not page["next_cursor"] or (wanted is not None and printed >= wanted):
                    break
    except search.BadQuery as exc:
        click.echo(f"tspipe events search: {exc}", err=True)
        sys.exit(2)
    except psycopg.Error as exc:
        click.echo(f"tspipe events search: cannot query the archive: {str(exc).strip().splitlines()[0]}", err=True)
        sys.exit(1)
    if params.get("cursor"):
        click.echo(f"next_cursor: {params['cursor']}", err=True)
