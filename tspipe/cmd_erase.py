"""`tspipe erase ADDRESS`: the same erasure as DELETE /v1/subjects/{address}, from the command line."""

from __future__ import annotations

import json
import sys

import click

from tspipe.context import settings_or_exit


@click.command("erase")
@click.argument("address")
def erase_command(address: str) -> None:
    """Erase a phone number's or e-mail's personal data from the archive and Redis (its opt-out survives, keyed)."""
    import psycopg
    import redis

    from store.erasure import ErasureKeyMissing, erase_everywhere

    settings = settings_or_exit("erase", need_redis=True)
    try:
        erased = erase_everywhere(settings, address)
    except ValueError as exc:
        click.echo(f"tspipe erase: {exc}", err=True)
        sys.exit(2)
    except ErasureKeyMissing as exc:
        click.echo(f"tspipe erase: {exc}", err=True)
        sys.exit(2)
    except psycopg.Error as exc:
        click.echo(f"tspipe erase: cannot reach the archive, nothing was erased: {str(exc).strip().splitlines()[0]}",
                   err=True)
        sys.exit(1)
    except redis.RedisError as exc:
        click.echo(f"tspipe erase: cannot reach Redis (safe to run again): {exc}", err=True)
        sys.exit(1)
    click.echo(json.dumps({"address": address, "erased": erased}))
