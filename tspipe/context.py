"""What every command needs first: valid settings, or one line naming the bad variable and exit status 2."""

from __future__ import annotations

import sys

import click

from config import ConfigError, Settings, get_settings


def settings_or_exit(command: str, need_redis: bool = False) -> Settings:
    """The process settings; a bad or missing value ends the command with one line on stderr, never a traceback."""
    try:
        settings = get_settings()
    except ConfigError as exc:
        click.echo(f"tspipe {command}: {exc}", err=True)
        sys.exit(2)
    if need_redis and not settings.redis_url:
        click.echo(f"tspipe {command}: REDIS_URL is not set (use `tspipe run` for an embedded Redis)", err=True)
        sys.exit(2)
    return settings
