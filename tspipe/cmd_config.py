"""`tspipe config check`: the effective configuration, secrets masked, or the one line that is wrong."""

from __future__ import annotations

import sys

import click

from config import ConfigError, describe
from tspipe.context import CONFIG_ERROR_PREFIX, check_configuration


@click.group("config")
def config_group() -> None:
    """Inspect the configuration read from the environment."""


@config_group.command("check")
def check_command() -> None:
    """Validate every setting and print the effective values (secrets masked). Exit 2 on a bad value.

    The check is the one every process runs at start-up (tspipe/context.py), so this exits 0
    exactly when `tspipe web`, `worker` and `beat` would start, and otherwise prints their line.
    """
    try:
        settings = check_configuration()
    except ConfigError as exc:
        click.echo(f"{CONFIG_ERROR_PREFIX}{exc}", err=True)
        sys.exit(2)
    width = max(len(name) for name, _, _ in describe(settings))
    for name, value, _ in describe(settings):
        click.echo(f"{name.ljust(width)}  {value}")
    _show_keywords(settings.keywords)
    if not settings.auth_enabled:
        click.echo("warning: TELESIGN_API_KEY is not set: /callbacks accepts unsigned requests", err=True)
    if not settings.api_token:
        click.echo("warning: TSPIPE_API_TOKEN is not set: /v1 and /dashboard answer loopback clients only", err=True)


def _show_keywords(raw: str | None) -> None:
    """The effective keyword map, one line per scope and action, so a sender sees what a message will trigger."""
    from config.keywords import keyword_map

    keywords = keyword_map(raw)
    click.echo(f"\nkeyword map (preset {keywords.preset}; first match wins: channel, language, all):")
    for scope, action, words in keywords.rows():
        click.echo(f"  {scope.ljust(18)} {action.ljust(8)} {', '.join(words)}")
