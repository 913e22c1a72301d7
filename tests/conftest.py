"""Shared fixtures: real Redis servers on free ports, a real PostgreSQL, fixture payloads.

Redis is real in every integration test: a redis-server child process on a
free port under the test's temporary folder, never the machine's 6379.
PostgreSQL is real too: one pgserver instance per session on a unix socket
under the session's temporary folder, never the machine's 5432.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import uuid
from pathlib import Path

import psycopg
import pytest
import redis

from tspipe.redis_server import RedisServer

# Tests run in their own tmp_path (see _isolated_settings): subprocesses that import the `tests`
# package get this on PYTHONPATH instead of the working directory.
REPO_ROOT = str(Path(__file__).resolve().parent.parent)
FIXTURES = Path(__file__).parent / "fixtures" / "telesign"
SEEDS = Path(__file__).parent / "fixtures" / "seeds"


async def wait_healthy(base: str, proc, timeout: float = 60.0) -> None:
    """Until a `tspipe web` subprocess answers /healthz with 200 (generous: processes start slowly on a
    shared machine); fails at once if the process exits."""
    import asyncio
    import time

    import aiohttp

    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            assert proc.poll() is None, "tspipe web exited early"
            try:
                async with session.get(base + "/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise AssertionError("tspipe web did not become healthy")


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


def postgres_home() -> Path:
    """A folder for a test's PostgreSQL data, outside pytest's temporary tree, removed by the caller.

    pgserver runs the server as its own user, which must traverse every parent
    folder: pgserver opens them up (o+rx), but each pytest session on the
    machine closes `pytest-of-root` again (0700), under a running server's feet.
    """
    home = Path(tempfile.mkdtemp(prefix="tspipe-pg-"))
    home.chmod(0o755)
    return home


@pytest.fixture(scope="session")
def postgres():
    """One real PostgreSQL 16 (pgserver) for the whole session; tests get a fresh schema through `database_url`."""
    from archive.embedded import start

    home = postgres_home()
    server = start(home / "data")
    yield server
    server.cleanup()
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def database_url(postgres) -> str:
    """A URL whose search_path is a new, empty schema of the session's PostgreSQL: a database of the test's own."""
    from archive.embedded import database_url as url_of

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres.get_uri(), autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    yield url_of(postgres, schema=schema)
    with psycopg.connect(postgres.get_uri(), autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")
