"""Celery side: decode, classify, dedup, apply state, run keyword actions, fan out.

`app` is looked up lazily (`celery -A workers` still finds it): importing a
light module such as workers.destinations, which `tspipe config check` and the
web process use to validate settings, must not build the Celery app.
"""

from typing import Any

__all__ = ["app"]


def __getattr__(name: str) -> Any:
    if name == "app":
        from workers.app import app

        return app
    raise AttributeError(f"module 'workers' has no attribute {name!r}")
