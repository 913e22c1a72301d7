"""The layers point one way: pipeline/, config/ and store/ under ingest/, workers/ and deliver/, which never
import each other; tspipe/ on top. Nothing builds a Celery app on import.

Checked twice: statically (every import statement, including ones inside
functions) and at run time (what a fresh interpreter has loaded after the
web app is built), because the second is what the web process pays for.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _imports(package: str) -> list[tuple[str, str]]:
    """(file, imported module) for every import statement under `package`/."""
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found += [(path.name, alias.name) for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.append((path.name, node.module))
    return found


UPPER = ("ingest", "workers", "deliver", "archive", "tspipe")


@pytest.mark.parametrize("package, forbidden", [
    # The bottom: pure logic, storage and settings import none of the processes built on them.
    ("pipeline", UPPER + ("store", "config", "celery", "kombu", "aiohttp", "redis")),
    # archive/ is PostgreSQL's side of storage, beside store/ (tests/archive/test_layering.py): erasure reaches it.
    ("store", ("ingest", "workers", "deliver", "tspipe", "celery", "kombu", "aiohttp")),
    ("config", UPPER + ("store", "celery", "kombu", "aiohttp", "redis")),
    # The three kinds of process stand side by side and never import each other.
    ("ingest", ("workers", "deliver", "tspipe", "celery", "kombu")),
    ("workers", ("ingest", "deliver", "tspipe", "aiohttp")),
    # The delivery engine: asyncio and aiohttp, never Celery (it must not wait on, or be, a worker process).
    ("deliver", ("ingest", "workers", "archive", "tspipe", "celery", "kombu")),
])
def test_package_imports_only_layers_below_it(package, forbidden):
    bad = [(f, m) for f, m in _imports(package) if m.split(".")[0] in forbidden]
    assert not bad, f"{package}/ imports what it must not: {bad}"


def _loaded_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys; print(' '.join(sys.modules))"],
                         cwd=ROOT, capture_output=True, text=True, check=True, timeout=60).stdout
    return {name.split(".")[0] for name in out.split()}


def test_storage_layer_loads_no_celery_or_aiohttp():
    loaded = _loaded_after("import store, store.keys, store.connection, store.state, store.journal, "
                           "store.quarantine, store.deadletters, store.optouts, store.serialization")
    assert not loaded & {"celery", "kombu", "aiohttp", "workers", "ingest"}


def test_configuration_check_and_delivery_engine_load_no_workers_or_celery():
    """Every process checks every setting first (tspipe/context.py): the destinations and auto-replies are parsed
    in config/, so the check loads none of workers/ (it built the Celery app: ~0.3 s of CPU before each
    `tspipe web`); nor does the delivery engine, which reads the destinations and signs with pipeline/."""
    destinations = json.dumps([{"name": "hook", "url": "http://127.0.0.1:9/", "secret": "whsec_" + "QUFB" * 8}])
    replies = json.dumps({"stop": {"default": "Bye"}})
    code = (
        "import os\n"
        f"os.environ.update(TSPIPE_DESTINATIONS={destinations!r}, TSPIPE_AUTOREPLIES={replies!r})\n"
        "from tspipe.context import check_configuration\n"
        "assert [d.name for d in __import__('config.destinations').destinations.load_destinations()] == ['hook']\n"
        "check_configuration()\n"
        "import deliver.engine, tspipe.cmd_deliver\n"
    )
    assert not _loaded_after(code) & {"celery", "kombu", "workers"}


def test_web_process_builds_no_celery_app(tmp_path):
    """What `tspipe web` runs: the CLI and the app. A bad TSPIPE_DESTINATIONS cannot stop it, Celery is never loaded."""
    code = (
        "import tspipe.cli\n"
        "from config.settings import load_settings\n"
        "from ingest.app import create_app\n"
        f"create_app(load_settings({{}}, redis_url='redis://127.0.0.1:1/0', data_dir={str(tmp_path)!r},"
        " destinations='not json'))\n"
    )
    loaded = _loaded_after(code)
    assert "celery" not in loaded and "workers" not in loaded


def test_worker_modules_import_each_other_without_a_circle():
    """deadletters, delivery and plugins once imported each other; storage moved down, replay up, so no circle is left."""
    graph: dict[str, set[str]] = {}
    for path in sorted((ROOT / "workers").glob("*.py")):
        module = f"workers.{path.stem}"
        graph[module] = set()
        for node in ast.parse(path.read_text()).body:  # module level: what runs on import
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("workers"):
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
                graph[module] |= {t for t in targets if (ROOT / (t.replace(".", "/") + ".py")).exists()}

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, f"import circle: {' -> '.join(path + (module,))}"
        for target in graph.get(module, ()):
            visit(target, path + (module,))

    for module in graph:
        visit(module, ())


PACKAGES = ("pipeline", "config", "store", "archive", "ingest", "workers", "deliver", "tspipe")


def test_importing_every_module_builds_no_celery_app_and_reads_no_settings():
    """Every module of every package, imported in one fresh interpreter with a TSPIPE_DESTINATIONS that does not
    parse: none fails, none builds a Celery app (not even Celery's fallback default app), none reads the settings."""
    modules = sorted(
        ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for package in PACKAGES for path in (ROOT / package).rglob("*.py") if path.stem != "__main__"
    )
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "import celery._state as state, config.settings, workers.app\n"
        "print(len(list(state._apps)), state.default_app, getattr(state._tls, 'current_app', None),"
        " config.settings._cached, workers.app._app)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env["TSPIPE_DESTINATIONS"] = "not json"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["0", "None", "None", "None", "None"]
    assert len(modules) > 100


def test_get_app_builds_one_app_on_first_use_and_celery_finds_it(tmp_path):
    """`tspipe worker` and `celery -A workers.app` (or `workers.app:app`) reach the same cached app."""
    code = (
        "from celery import current_app\n"
        "from celery.app.utils import find_app\n"
        "import celery._state as state\n"
        "from workers.app import get_app, reset_app\n"
        "import workers.tasks  # what a worker imports at start (the app's `imports`)\n"
        "assert not list(state._apps)\n"
        "app = get_app()\n"
        "assert get_app() is app is find_app('workers.app') is find_app('workers.app:app')\n"
        "assert current_app._get_current_object() is app and 'tspipe.ingest_batch' in app.tasks\n"
        "reset_app()\n"
        "assert get_app() is not app\n"
        "print('ok')\n"
    )
    env = dict(os.environ, REDIS_URL="redis://127.0.0.1:1/0", TSPIPE_DATA_DIR=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "ok", out.stderr
