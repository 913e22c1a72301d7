"""What every command needs first: a configuration every process would accept, or one line and exit status 2.

`check_configuration` is the one place that decides whether the environment
is usable: `tspipe config check` and every process (web, worker, beat, run)
and CLI command call it, so a bad value gives the same line everywhere and
`config check` passes exactly when the processes would start.
"""

from __future__ import annotations

import importlib.util
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

# The prefix of the line every command prints for a configuration it refuses.
CONFIG_ERROR_PREFIX = "tspipe: bad configuration: "


def check_configuration() -> Settings:
    """The settings, with every value a process parses at start-up validated; raises ConfigError."""
    settings = get_settings()
    # Imported here: these modules are the owners of their settings' shapes.
    from config.autoreplies import load_autoreplies
    from config.destinations import parse_destinations

    parse_destinations(settings.destinations)
    load_autoreplies(settings.autoreplies)
    for path in (p.strip() for p in (settings.plugins or "").split(",")):
        if not path:
            continue
        module = path.partition(":")[0] if ":" in path else path.rpartition(".")[0]
        try:
            found = bool(module) and importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise ConfigError("TSPIPE_PLUGINS", f"cannot find the module of {path!r}; install the package that "
                              "holds it or fix the dotted path (module.task or module:task)")
    return settings


def settings_or_exit(command: str, need_redis: bool = False) -> Settings:
    """The process settings; a bad or missing value ends the command with one line on stderr, never a traceback."""
    try:
        settings = check_configuration()
    except ConfigError as exc:
        click.echo(f"{CONFIG_ERROR_PREFIX}{exc}", err=True)
        sys.exit(2)
    if need_redis and not settings.redis_url:
        click.echo(f"tspipe {command}: REDIS_URL is not set and no `tspipe run` is running in "
                   f"TSPIPE_DATA_DIR ({settings.data_dir}): set REDIS_URL, or start `tspipe run` first", err=True)
        sys.exit(2)
    return settings
