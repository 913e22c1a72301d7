"""The layers point one way: store/ under ingest/ and workers/, which never import each other.

Checked twice: statically (every import statement, including ones inside
functions) and at run time (what a fresh interpreter has loaded after the
web app is built), because the second is what the web process pays for.
"""

from __future__ import annotations

import ast
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


@pytest.mark.parametrize("package, forbidden", [
    ("store", ("celery", "kombu", "aiohttp", "ingest", "workers", "deliver", "tspipe")),
    ("ingest", ("workers", "celery", "kombu")),
    ("workers", ("ingest", "aiohttp", "deliver")),
    # The delivery engine: asyncio and aiohttp, never Celery (it must not wait on, or be, a worker process).
    ("deliver", ("ingest", "celery", "kombu", "tspipe")),
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
