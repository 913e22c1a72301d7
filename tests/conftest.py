"""Shared fixtures: real Redis servers on free ports, fixture payloads.

Redis is real in every integration test: a redis-server child process on a
free port under the test's temporary folder, never the machine's 6379.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import redis

from tspipe.redis_server import RedisServer

FIXTURES = Path(__file__).parent / "fixtures" / "telesign"
SEEDS = Path(__file__).parent / "fixtures" / "seeds"


def fixture_bodies() -> dict[str, bytes]:
    """Every Telesign example payload, by file stem, as the raw bytes Telesign would POST."""
    return {path.stem: path.read_bytes() for path in sorted(FIXTURES.glob("*.json"))}


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory):
    """One real Redis for the whole session; tests get a clean database through `redis_url`."""
    server = RedisServer(tmp_path_factory.mktemp("redis"), appendonly=False).start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    return redis_server.url


@pytest.fixture
def own_redis(tmp_path: Path):
    """A Redis of the test's own, for tests that stop, kill or restart it."""
    server = RedisServer(tmp_path / "redis", appendonly=True).start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _isolated_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """No test inherits the developer's TSPIPE_*/TELESIGN_* environment, cached settings or plug-ins,
    and none writes into the working tree: each runs in its own temporary data directory and working
    directory (a relative path such as the default `.tspipe` or the example plug-in's optouts.csv
    lands under tmp_path)."""
    for name in list(os.environ):
        if name.startswith(("TSPIPE_", "TELESIGN_")) or name in ("REDIS_URL", "PORT"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TSPIPE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    _reset_caches()
    yield
    _reset_caches()


def _reset_caches() -> None:
    """Forget settings and whatever was parsed or imported from them (only in modules already loaded:
    importing workers here would build the Celery app for tests that never use it)."""
    from config.settings import reset_settings_cache

    reset_settings_cache()
    if (plugins := sys.modules.get("workers.plugins")) is not None:
        plugins._loaded = None
    if (destinations := sys.modules.get("workers.destinations")) is not None:
        destinations._parsed.cache_clear()
    if (actions := sys.modules.get("workers.actions")) is not None:
        actions.load_autoreplies.cache_clear()
