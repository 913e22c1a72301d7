"""The `tspipe` command line. Subcommands live in small modules, named here and loaded when used.

Every command turns tspipe's own errors into one line on stderr and exit
status 1 or 2, never a traceback.
"""

from __future__ import annotations

import importlib
import sys

import click

from tspipe import __version__


# Each subcommand's module is imported only when that subcommand runs (or for --help): the modules
# pull in aiohttp, redis, structlog, honcho and Celery between them, which cost a plain
# `tspipe classify` over half a second of start-up before anything was done.
COMMANDS = {
    "classify": "tspipe.cmd_classify:classify_command",
    "web": "tspipe.cmd_web:web_command",
    "worker": "tspipe.cmd_worker:worker",
    "beat": "tspipe.cmd_worker:beat",
    "flower": "tspipe.cmd_worker:flower",
    "deliver": "tspipe.cmd_deliver:deliver_command",
    "archive": "tspipe.cmd_archive:archive_command",
    "run": "tspipe.cmd_run:run_command",
    "config": "tspipe.cmd_config:config_group",
    "send-samples": "tspipe.cmd_samples:send_samples_command",
    "quarantine": "tspipe.cmd_quarantine:quarantine",
    "dlq": "tspipe.cmd_dlq:dlq",
    "events": "tspipe.cmd_events:events_group",
    "erase": "tspipe.cmd_erase:erase_command",
    "optouts": "tspipe.cmd_optouts:optouts",
    "destinations": "tspipe.cmd_destinations:destinations_group",
    "stats": "tspipe.cmd_stats:stats_command",
}


class LazyGroup(click.Group):
    """click's documented lazy-loading group: subcommands named here, imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.commands or name not in COMMANDS:
            return super().get_command(ctx, name)
        module, attribute = COMMANDS[name].split(":")
        command = getattr(importlib.import_module(module), attribute)
        self.add_command(command, name)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tspipe")
def cli() -> None:
    """tspipe: receive Telesign callbacks and turn them into clean, trustworthy events."""
    from tspipe.context import adopt_running_redis

    adopt_running_redis()


def main() -> None:
    try:
        cli(standalone_mode=True)
    except KeyboardInterrupt:  # pragma: no cover - interactive only
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
