"""Worker test helpers: callback bodies built from the Telesign fixtures, the worker store on a real Redis,
and the example plug-ins pip-installed from a copy (so the build leaves nothing in the checkout)."""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis

from config.settings import reset_settings_cache
from store.state import Store
from tests.conftest import fixture_bodies

FIXTURES = {name: json.loads(body) for name, body in fixture_bodies().items()}
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def body(name: str, **changes) -> bytes:
    """A fixture body with top-level or status fields changed (status_code=, updated_on=, reference_id=...)."""
    data = json.loads(json.dumps(FIXTURES[name]))
    for key, value in changes.items():
        if key.startswith("status_"):
            data["status"][key[len("status_"):]] = value
        else:
            data[key] = value
    return json.dumps(data).encode()


@pytest.fixture
def store(redis_url, monkeypatch):
    """The in-process worker's store and Celery broker pointed at this test's Redis."""
    from workers import tasks
    from workers.app import reset_app

    monkeypatch.setenv("REDIS_URL", redis_url)
    reset_settings_cache()
    tasks.reset_store()
    reset_app()  # get_app() builds it again, on this test's REDIS_URL
    client = redis.Redis.from_url(redis_url)
    yield Store(client)
    tasks.reset_store()
    client.close()


@contextmanager
def pip_installed(example: str, distribution: str, scratch: Path):
    """pip-install examples/<example> into this venv as a real `tspipe.plugins` entry point, then remove it.

    It is built from a copy under `scratch`: setuptools writes build/ next to the sources, which would
    change the checkout. No build isolation and no dependencies, so no network is needed."""
    source = scratch / example
    shutil.copytree(EXAMPLES / example, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(pip + ["install", "--no-deps", "--no-build-isolation", str(source)], check=True, cwd=scratch)
    importlib.invalidate_caches()
    try:
        yield
    finally:
        subprocess.run(pip + ["uninstall", "-y", distribution], check=True, cwd=scratch)
        importlib.invalidate_caches()
