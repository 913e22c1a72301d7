"""pipeline/ stays pure: no imports from the I/O layers, no network or Redis clients."""

import ast
from pathlib import Path

import pipeline

FORBIDDEN = ("ingest", "workers", "tspipe", "redis", "aiohttp", "celery", "kombu", "socket", "requests")


def test_pipeline_imports_nothing_with_io():
    root = Path(pipeline.__file__).parent
    for path in root.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in FORBIDDEN, f"{path.name} imports {name}"
