"""The `tspipe` command line. Subcommands live in small modules and are added here.

Every command turns tspipe's own errors into one line on stderr and exit
status 1 or 2, never a traceback.
"""

from __future__ import annotations

import sys

import click

from tspipe import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tspipe")
def cli() -> None:
    """tspipe: receive Telesign callbacks and turn them into clean, trustworthy events."""
    from tspipe.context import adopt_running_redis

    adopt_running_redis()


from tspipe.cmd_archive import archive_command  # noqa: E402
from tspipe.cmd_classify import classify_command  # noqa: E402
from tspipe.cmd_config import config_group  # noqa: E402
from tspipe.cmd_dlq import dlq  # noqa: E402
from tspipe.cmd_erase import erase_command  # noqa: E402
from tspipe.cmd_events import events_group  # noqa: E402
from tspipe.cmd_optouts import optouts  # noqa: E402
from tspipe.cmd_quarantine import quarantine  # noqa: E402
from tspipe.cmd_run import run_command  # noqa: E402
from tspipe.cmd_samples import send_samples_command  # noqa: E402
from tspipe.cmd_stats import stats_command  # noqa: E402
from tspipe.cmd_web import web_command  # noqa: E402
from tspipe.cmd_worker import beat, flower, worker  # noqa: E402
from tspipe.cmd_deliver import deliver_command  # noqa: E402
from tspipe.cmd_destinations import destinations_group  # noqa: E402

cli.add_command(classify_command)
cli.add_command(web_command)
cli.add_command(worker)
cli.add_command(beat)
cli.add_command(flower)
cli.add_command(quarantine)
cli.add_command(dlq)
cli.add_command(run_command)
cli.add_command(config_group)
cli.add_command(send_samples_command)
cli.add_command(archive_command)
cli.add_command(events_group)
cli.add_command(erase_command)
cli.add_command(optouts)
cli.add_command(deliver_command)
cli.add_command(destinations_group)
cli.add_command(stats_command)


def main() -> None:
    try:
        cli(standalone_mode=True)
    except KeyboardInterrupt:  # pragma: no cover - interactive only
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
