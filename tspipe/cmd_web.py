"""`tspipe web`: the ingress process (Procfile `web`).

Runs on uvloop. On SIGTERM aiohttp stops accepting connections, lets the
in-flight requests finish (their batches are written) and then the app's
cleanup writes whatever is still pending before the process exits.
"""

from __future__ import annotations


import click

from tspipe.context import settings_or_exit
from config.logging import configure_logging

SHUTDOWN_TIMEOUT_S = 10.0
LINGER_S = 1.0


def _raise_open_file_limit() -> None:
    """Every connection is a file descriptor: use the hard limit, not the soft 1,024 many systems default to."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ImportError, ValueError, OSError):  # pragma: no cover - no resource module, or not allowed
        pass


@click.command("web")
@click.option("--host", default=None, help="Address to bind (default: TSPIPE_HOST).")
@click.option("--port", type=int, default=None, help="Port to listen on (default: PORT).")
def web_command(host: str | None, port: int | None) -> None:
    """Run the HTTP ingress that receives Telesign callbacks."""
    _raise_open_file_limit()
    # Checked before importing the app: a bad setting must give its one line, not an import-time traceback.
    settings = settings_or_exit("web", need_redis=True)
    from aiohttp import web

    from ingest.app import create_app

    configure_logging(settings)
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is absent only on Windows
        pass
    web.run_app(
        create_app(settings),
        host=host or settings.host,
        port=port or settings.port,
        shutdown_timeout=SHUTDOWN_TIMEOUT_S,
        # aiohttp arms this timer when a connection opens and re-arms it only after a complete
        # request: a client still trickling its headers (slowloris) is dropped when it fires.
        keepalive_timeout=settings.header_timeout_seconds,
        # After an early answer (408, 413, 503) aiohttp reads and drops the rest of the body for this
        # long before closing, so the client sees the answer rather than a reset; not 10 s per slow client.
        lingering_time=LINGER_S,
        access_log=None,
        print=None,
    )
