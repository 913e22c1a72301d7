"""What every command needs first: valid settings, or one line naming the bad variable and exit status 2."""

from __future__ import annotations

import os
import sys

import click

from config import ConfigError, Settings, get_settings, load_settings
from config.settings import reset_settings_cache
from tspipe.runstate import live_run


def adopt_running_redis() -> None:
    """With REDIS_URL unset, use the embedded Redis of a `tspipe run` alive in the same TSPIPE_DATA_DIR.

    So `tspipe dlq list` or `tspipe quarantine list` in a second terminal next to
    `make run` just works. It goes into the environment, not only into the
    settings, because some commands build the Celery app, which reads it too.
    """
    if os.environ.get("REDIS_URL", "").strip():
        return
    try:
        data_dir = load_settings().data_dir
    except ConfigError:
        return  # the command itself reports the bad variable
    state = live_run(data_dir)
    if state is not None and state.redis_url:
        os.environ["REDIS_URL"] = state.redis_url
        reset_settings_cache()


def settings_or_exit(command: str, need_redis: bool = False) -> Settings:
    """The process settings; a bad or missing value ends the command with one line on stderr, never a traceback."""
    try:
        settings = get_settings()
    except ConfigError as exc:
        click.echo(f"tspipe {command}: {exc}", err=True)
        sys.exit(2)
    if need_redis and not settings.redis_url:
        click.echo(f"tspipe {command}: REDIS_URL is not set and no `tspipe run` is running in "
                   f"TSPIPE_DATA_DIR ({settings.data_dir}): set REDIS_URL, or start `tspipe run` first", err=True)
        sys.exit(2)
    return settings
