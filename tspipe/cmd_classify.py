"""`tspipe classify`: one JSON line per raw callback body (CONTRACT.md section 2)."""

from __future__ import annotations

import os
import sys

import click
import msgspec

from config.keywords import VARIABLE as KEYWORDS_VARIABLE
from config.keywords import keyword_map
from pipeline import InvalidCallback, decode
from pipeline.keywords import KeywordMapError
from pipeline.event import EVENT_ENCODER

CHANNEL_CHOICES = ["sms", "mms", "rcs", "viber", "whatsapp", "email", "verify"]


@click.command("classify")
@click.option("--channel", type=click.Choice(CHANNEL_CHOICES, case_sensitive=False), default=None,
              help="Channel of the callback URL the bodies came in on (needed for Viber inbound messages).")
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False, allow_dash=True))
def classify_command(channel: str | None, files: tuple[str, ...]) -> None:
    """Classify raw Telesign callback bodies: print one normalized event (or error) per FILE.

    With no FILE, or FILE '-', read standard input. Exit status 1 if any input failed.
    Keywords are detected with TSPIPE_KEYWORDS when it is set, else the telesign preset.
    """
    try:
        keywords = keyword_map(os.environ.get(KEYWORDS_VARIABLE))
    except KeywordMapError as exc:
        click.echo(f"tspipe classify: {KEYWORDS_VARIABLE}: {exc}", err=True)
        sys.exit(2)
    out = sys.stdout.buffer
    failed = 0
    for name in files or ("-",):
        try:
            body = sys.stdin.buffer.read() if name == "-" else _read(name)
            line = EVENT_ENCODER.encode(decode(body, channel_hint=channel, keywords=keywords))
        except (InvalidCallback, OSError) as exc:
            failed += 1
            reason = str(exc)
            line = msgspec.json.encode({"error": reason})
            click.echo(f"tspipe classify: {name}: {reason}", err=True)
        out.write(line + b"\n")
        out.flush()
    if failed:
        sys.exit(1)


def _read(name: str) -> bytes:
    try:
        with open(name, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise OSError(f"cannot read file: {exc.strerror or exc}") from None
