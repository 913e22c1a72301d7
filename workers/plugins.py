"""User plug-ins: ordinary Celery tasks, found through the `tspipe.plugins` entry point group
or TSPIPE_PLUGINS (comma-separated "package.module:task" or "package.module.task").

A plug-in declares what it wants as task options, which Celery keeps as
task attributes, so the user writes nothing tspipe-specific but a decorator:

    @shared_task(name="acme.optouts", tspipe_filter={"actions": ["stop"]}, tspipe_batch=False,
                 autoretry_for=(OSError,), max_retries=3)
    def record(event: dict) -> None: ...

It receives each event as a plain dict (the event's JSON), or a list of them
when `tspipe_batch=True`; `to_event()` turns a dict back into a msgspec
Event. A plug-in that still raises after its own retries is dead-lettered.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any

import msgspec
from celery import Task
from celery.signals import import_modules, task_failure, worker_init

from config import get_settings
from config.destinations import Filter
from pipeline.event import EVENT_DECODER, Event
from store import connection, deadletters

GROUP = "tspipe.plugins"


class Plugin(msgspec.Struct, frozen=True):
    task: Any
    filter: Filter
    batch: bool

    @property
    def name(self) -> str:
        return self.task.name

    @property
    def queue(self) -> str | None:
        """A queue declared on the task itself (else Celery's task_routes and default queue decide)."""
        return getattr(self.task, "queue", None)


def to_event(data: dict) -> Event:
    return EVENT_DECODER.decode(msgspec.json.encode(data))


def _resolve(path: str) -> Any:
    module, _, attr = path.partition(":") if ":" in path else path.rpartition(".")
    return getattr(importlib.import_module(module), attr)


def _as_plugin(task: Any) -> Plugin:
    spec = getattr(task, "tspipe_filter", None) or {}
    return Plugin(task=task, filter=msgspec.convert(spec, Filter), batch=bool(getattr(task, "tspipe_batch", False)))


_loaded: list[Plugin] | None = None


def load_plugins(refresh: bool = False) -> list[Plugin]:
    """Import every declared plug-in once per process (importing registers its task with the app)."""
    global _loaded
    if _loaded is None or refresh:
        found = [ep.load() for ep in entry_points(group=GROUP)]
        raw = get_settings().plugins or ""
        found += [_resolve(p.strip()) for p in raw.split(",") if p.strip()]
        _loaded = [_as_plugin(t) for t in found]
    return _loaded


def plugin_names() -> set[str]:
    return {p.name for p in load_plugins()}


@import_modules.connect
@worker_init.connect
def _load_on_worker_start(sender: Any = None, **_: Any) -> None:
    """The worker must know plug-in task names before the first one arrives.

    Celery sends import_modules before it imports `include` (this module among
    them), so that receiver alone never ran in `tspipe worker`: worker_init
    comes after the imports and before the consumer builds its task table.
    """
    load_plugins()


@task_failure.connect
def _dead_letter_plugin(sender: Task | None = None, args: tuple = (), exception: BaseException | None = None,
                        **_: Any) -> None:
    """task_failure fires only once retries are exhausted (a retry is not a failure)."""
    if sender is None or sender.name not in plugin_names() or not args:
        return
    attempts = (sender.request.retries or 0) + 1
    entry = deadletters.new_entry("plugin", sender.name, msgspec.json.encode(args[0]), repr(exception), attempts)
    deadletters.add(connection.shared(get_settings().redis_url), entry)
