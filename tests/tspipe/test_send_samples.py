"""`tspipe send-samples` against the real ingress with signatures on: every sample accepted and queued."""

import asyncio
import os
import subprocess
import sys

import redis

from config import load_settings
from ingest.app import create_app
from tests.conftest import fixture_bodies
from tspipe.redis_server import free_port

KEY = "EXAMPLE----TE8sTgg45yusumoN6BYsBVkh+yRJ5czgsnCehZaOYldPJdmFh6NeX8kunZ2zU1YWaUw/0wV6xfw=="


async def test_send_samples_signed(redis_url, aiohttp_server):
    settings = load_settings({"REDIS_URL": redis_url, "TELESIGN_API_KEY": KEY, "TELESIGN_CUSTOMER_ID": "CID-1"})
    server = await aiohttp_server(create_app(settings), port=free_port())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TSPIPE_", "TELESIGN_"))}
    env.update(TELESIGN_API_KEY=KEY, TELESIGN_CUSTOMER_ID="CID-1")
    count = 2 * len(fixture_bodies())
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tspipe", "send-samples", "--url", str(server.make_url("")), "--count", str(count),
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    assert f"200: {count}" in out.decode()
    queued = redis.Redis.from_url(redis_url).llen(settings.queue)
    assert queued >= 1


async def test_send_samples_reports_refusals(redis_url, aiohttp_server):
    settings = load_settings({"REDIS_URL": redis_url, "TELESIGN_API_KEY": KEY})
    server = await aiohttp_server(create_app(settings), port=free_port())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TSPIPE_", "TELESIGN_"))}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tspipe", "send-samples", "--url", str(server.make_url("")),
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 1
    assert b"401:" in out and b"not every callback" in err and b"Traceback" not in err
