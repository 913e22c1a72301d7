"""`tspipe worker` and `tspipe beat`: the Celery processes of the Procfile.

Thin wrappers over Celery's own entry points so operators get Celery's flags
and signals unchanged; settings (REDIS_URL, concurrency) come from config/.
"""

from __future__ import annotations

from pathlib import Path

import click

from config import ConfigError
from tspipe.context import settings_or_exit
from config.logging import configure_logging


def _app(command: str = "worker"):
    settings = settings_or_exit(command, need_redis=True)
    configure_logging(settings)
    try:
        # Building the app validates TSPIPE_DESTINATIONS (a destination's secret, say): one line, not a traceback.
        from workers.app import get_app

        app = get_app()
    except ConfigError as exc:
        click.echo(f"tspipe {command}: {exc}", err=True)
        raise SystemExit(2) from None

    return app, settings


@click.command(context_settings={"ignore_unknown_options": True})
@click.option("--concurrency", "-c", type=int, default=None, help="Worker processes (default TSPIPE_WORKER_CONCURRENCY).")
@click.option("--loglevel", "-l", default=None, help="Celery log level (default TSPIPE_LOG_LEVEL).")
@click.option("--quiet", "-q", is_flag=True, help="No Celery start-up banner (tspipe run passes it).")
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
def worker(concurrency: int | None, loglevel: str | None, quiet: bool, celery_args: tuple[str, ...]) -> None:
    """Run the Celery worker that applies callback batches (extra arguments go to Celery)."""
    app, settings = _app()
    from workers.plugins import load_plugins

    # Every declared queue: the ingest queue, the queues of the design before the delivery engine
    # (drained into it, workers/delivery.py) and every queue a plug-in declares on its task.
    # Missing one means its tasks wait forever under `tspipe worker` (the Procfile).
    queues = [q.name for q in app.conf.task_queues or ()] or [settings.queue]
    queues += [p.queue for p in load_plugins() if p.queue and p.queue not in queues]
    app.worker_main(
        [
            *(["--quiet"] if quiet else []),
            "worker",
            f"--concurrency={concurrency or settings.worker_concurrency}",
            f"--loglevel={loglevel or settings.log_level}",
            f"--queues={','.join(queues)}",
            *celery_args,
        ]
    )


@click.command(context_settings={"ignore_unknown_options": True})
@click.option("--loglevel", "-l", default=None, help="Celery log level (default TSPIPE_LOG_LEVEL).")
@click.option("--quiet", "-q", is_flag=True, help="No Celery start-up banner (tspipe run passes it).")
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
def beat(loglevel: str | None, quiet: bool, celery_args: tuple[str, ...]) -> None:
    """Run Celery beat, which schedules the periodic jobs (reconciliation)."""
    app, settings = _app("beat")
    schedule = []
    if not any(a in ("-s", "--schedule") or a.startswith("--schedule=") for a in celery_args):
        # Beat's default is ./celerybeat-schedule: under the Procfile that is the checkout.
        Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
        schedule = ["--schedule", str(Path(settings.data_dir) / "celerybeat-schedule")]
    app.start([*(["--quiet"] if quiet else []), "beat", f"--loglevel={loglevel or settings.log_level}", *schedule, *celery_args])


@click.command(context_settings={"ignore_unknown_options": True})
@click.option("--port", type=int, default=5555, show_default=True, help="Port for Flower's web page.")
@click.argument("flower_args", nargs=-1, type=click.UNPROCESSED)
def flower(port: int, flower_args: tuple[str, ...]) -> None:
    """Run Flower, Celery's monitor, on tspipe's broker (needs `pip install -e '.[ops]'`)."""
    try:
        import flower as _flower  # noqa: F401 - only to say how to get it
    except ImportError:
        click.echo("tspipe flower: Flower is not installed: pip install -e '.[ops]' (or pip install flower)", err=True)
        raise SystemExit(2) from None
    app, settings = _app()
    app.start(["flower", f"--port={port}", "--address=127.0.0.1", *flower_args])
