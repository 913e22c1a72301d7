"""`tspipe config check`: the effective configuration, secrets masked, or the one line that is wrong."""

from __future__ import annotations

import sys

import click

from config import ConfigError, describe, load_settings


@click.group("config")
def config_group() -> None:
    """Inspect the configuration read from the environment."""


@config_group.command("check")
def check_command() -> None:
    """Validate every setting and print the effective values (secrets masked). Exit 2 on a bad value."""
    try:
        settings = load_settings()
        from workers.destinations import parse_destinations

        parse_destinations(settings.destinations)
    except ConfigError as exc:
        click.echo(f"tspipe config check: {exc}", err=True)
        sys.exit(2)
    width = max(len(name) for name, _, _ in describe(settings))
    for name, value, _ in describe(settings):
        click.echo(f"{name.ljust(width)}  {value}")
    _show_keywords(settings.keywords)
    if not settings.auth_enabled:
        click.echo("warning: TELESIGN_API_KEY is not set: /callbacks accepts unsigned requests", err=True)


def _show_keywords(raw: str | None) -> None:
    """The effective keyword map, one line per scope and action, so a sender sees what a message will trigger."""
    from config.keywords import keyword_map

    keywords = keyword_map(raw)
    click.echo(f"\nkeyword map (preset {keywords.preset}; first match wins: channel, language, all):")
    for scope, action, words in keywords.rows():
        click.echo(f"  {scope.ljust(18)} {action.ljust(8)} {', '.join(words)}")
