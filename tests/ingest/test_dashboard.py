"""The live dashboard: its JSON matches the store, the token guards it, and real Chromium renders it."""

import asyncio
import re
import shutil
from datetime import datetime, timezone

import pytest

from config import load_settings
from ingest.app import create_app
from pipeline.record import Record, encode_batch
from tests.conftest import fixture_bodies
from tspipe.redis_server import free_port
from store.state import Store
from workers.tasks import process_batch

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _seed(settings) -> Store:
    store = Store.from_settings(settings)
    now = datetime.now(timezone.utc).timestamp()
    bodies = list(fixture_bodies().values())
    records = [Record(body=b, received_at=now, channel_hint="whatsapp", request_id=str(i)) for i, b in enumerate(bodies)]
    records.append(Record(body=b"\xff not a callback", received_at=now, request_id="broken-1"))
    process_batch(encode_batch(records), store=store)
    return store


async def test_data_matches_store_and_token_guards(redis_url, aiohttp_client):
    settings = load_settings({"REDIS_URL": redis_url, "TSPIPE_API_TOKEN": "t0ken"})
    _seed(settings)
    client = await aiohttp_client(create_app(settings))
    assert (await client.get("/dashboard/data.json")).status == 401
    assert (await client.get("/")).status == 401
    assert (await client.get("/?token=t0ken")).status == 200
    response = await client.get("/dashboard/data.json", headers={"Authorization": "Bearer t0ken"})
    data = await response.json()
    assert data["callbacks_total"] == len(fixture_bodies())
    assert data["quarantine"]["count"] == 1 and data["quarantine"]["latest"][0]["request_id"] == "broken-1"
    assert len(data["latest_events"]) == len(fixture_bodies())
    assert sum(sum(v.values()) for v in data["outcomes_by_channel"].values()) == len(fixture_bodies())
    assert "11234567890" not in await response.text()


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed and could not be installed (make test tries apt-get)")
async def test_dashboard_in_headless_chromium(redis_url, aiohttp_server, tmp_path):
    settings = load_settings({"REDIS_URL": redis_url})
    _seed(settings)
    server = await aiohttp_server(create_app(settings), port=free_port())
    url = str(server.make_url("/"))
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=4000"]
    dom = await _run(CHROMIUM, *flags, "--dump-dom", url)
    assert 'data-loaded="1"' in dom, dom[-2000:]
    shown = {key: re.search(rf'id="{key}">([^<]*)<', dom).group(1) for key in ("total", "quarantine", "dlq", "queue")}
    assert shown == {"total": str(len(fixture_bodies())), "quarantine": "1", "dlq": "0", "queue": "0"}
    assert "35C8B5D509BC10689196FED2AD551B8A" in dom  # a latest event
    shot = tmp_path / "dashboard.png"
    await _run(CHROMIUM, *flags, f"--screenshot={shot}", "--window-size=1200,900", url)
    assert shot.exists() and shot.stat().st_size > 1000


async def _run(*argv: str) -> str:
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return out.decode("utf-8", "replace")


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed and could not be installed (make test tries apt-get)")
async def test_dashboard_search_box_in_headless_chromium(redis_url, database_url, aiohttp_server, tmp_path):
    from archive.writer import Writer
    from tests.archive.support import connect, delivery_body, now_minus, row_of

    Writer().archive(connect(database_url), [row_of(delivery_body("SEARCHED1", "+11234567890", now_minus(minutes=2)))])
    settings = load_settings({"REDIS_URL": redis_url, "DATABASE_URL": database_url})
    server = await aiohttp_server(create_app(settings), port=free_port())
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=4000"]
    dom = await _run(CHROMIUM, *flags, "--dump-dom", str(server.make_url("/?q=%2B1%20123%20456%207890")))
    results = re.search(r'<table id="search-results">(.*?)</table>', dom, re.S)
    assert results and "SEARCHED1" in results.group(1), dom[-2000:]
    assert re.search(r'id="search-status">1 found<', dom), dom[-2000:]


async def test_optouts_today_counts_by_when_the_optout_was_applied(redis_url):
    """The samples' STOPs happened years ago; applied now, they are today's opt-outs."""
    from ingest.dashboard import snapshot
    from store import keys
    import redis.asyncio as aioredis

    store = _seed(load_settings({"REDIS_URL": redis_url}))
    opted_out = store.client.zcard(keys.OPTOUT_INDEX)
    assert opted_out >= 1
    client = aioredis.Redis.from_url(redis_url)
    try:
        data = await snapshot(client, "tspipe.ingest")
    finally:
        await client.aclose()
    assert data["optouts_today"] == opted_out


async def test_dashboard_shows_quarantine_and_dead_letter_times_as_iso(redis_url, aiohttp_client):
    settings = load_settings({"REDIS_URL": redis_url})
    store = _seed(settings)
    from store import deadletters

    deadletters.add(store.client, deadletters.new_entry("destination", "hook", b"{}", "HTTP 500", 3))
    client = await aiohttp_client(create_app(settings))
    data = await (await client.get("/dashboard/data.json")).json()
    iso = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
    entry = data["quarantine"]["latest"][0]
    assert iso.match(entry["quarantined_at"]) and iso.match(entry["received_at"]), entry
    assert iso.match(data["deadletters"]["latest"][0]["failed_at"]), data["deadletters"]
