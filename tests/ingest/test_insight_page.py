"""The delivery-insight page in real headless Chromium: it renders charts, and its numbers are /v1/stats's."""

from __future__ import annotations

import re
import shutil

import pytest

from config import load_settings
from ingest.app import create_app
from tests.ingest.test_dashboard import _run
from tests.ingest.test_stats_api import fill
from tspipe.redis_server import free_port

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def secs(value: float) -> str:
    """The page's format for seconds (insight.js)."""
    return f"{value:.1f}s" if value < 60 else f"{value / 60:.1f}m"


async def test_insight_assets_and_token(redis_url, database_url, aiohttp_client):
    settings = load_settings({"REDIS_URL": redis_url, "DATABASE_URL": database_url, "TSPIPE_API_TOKEN": "t0ken"})
    client = await aiohttp_client(create_app(settings))
    assert (await client.get("/dashboard/insight")).status == 401
    assert (await client.get("/dashboard/insight?token=t0ken")).status == 200
    script = await client.get("/dashboard/vendor/uplot.min.js")
    assert script.status == 200 and "uPlot" in await script.text()
    assert (await client.get("/dashboard/vendor/uplot.min.css")).status == 200


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed and could not be installed (make test tries apt-get)")
async def test_insight_page_in_headless_chromium(redis_url, database_url, aiohttp_server, aiohttp_client, tmp_path):
    fill(database_url)
    settings = load_settings({"REDIS_URL": redis_url, "DATABASE_URL": database_url})
    server = await aiohttp_server(create_app(settings), port=free_port())
    api = await aiohttp_client(server)
    by_channel = (await (await api.get("/v1/stats", params={"group_by": "channel"})).json())["groups"]
    by_carrier = (await (await api.get("/v1/stats", params={"group_by": "carrier"})).json())["groups"]

    url = str(server.make_url("/dashboard/insight"))
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=6000", "--window-size=1280,1400"]
    dom = await _run(CHROMIUM, *flags, "--dump-dom", url)
    assert 'data-loaded="1"' in dom, dom[-2000:]
    cards = {key: re.search(rf'id="{key}">([^<]*)<', dom).group(1) for key in ("sent", "final", "failed", "rate")}
    assert cards == {"sent": str(sum(g["sent"] for g in by_channel)), "final": str(sum(g["final"] for g in by_channel)),
                     "failed": str(sum(g["failed"] for g in by_channel)), "rate": "75.0%"}
    # Charts drawn by uPlot: the volume series and the time-to-final histogram.
    assert dom.count('class="uplot') >= 2 and "<canvas" in dom
    # The worst carrier comes first, with its rate and its failure code, as /v1/stats has them.
    worst = min(by_carrier, key=lambda g: g["delivery_rate"])
    carriers = re.search(r'<table id="carriers">(.*?)</table>', dom, re.S).group(1)
    first_row = re.findall(r"<tr>(.*?)</tr>", carriers, re.S)[1]
    assert worst["label"] in first_row and "0.0%" in first_row and "220 Gateway/network cannot route message (5)" in first_row
    # Time to final per channel, as the API computes it.
    sms = next(g for g in by_channel if g["key"] == "sms")
    channels = re.search(r'<table id="channels">(.*?)</table>', dom, re.S).group(1)
    for name in ("p50", "p90", "p99"):
        assert secs(sms["time_to_final_s"][name]) in channels
    spend = ", ".join(f"{amount} {currency}" for currency, amount in sorted(sms["spend"].items()))
    assert spend == "0.1 EUR, 0.3 USD" and f'<td class="num">{spend}</td>' in channels

    shot = tmp_path / "insight.png"
    await _run(CHROMIUM, *flags, f"--screenshot={shot}", url)
    assert shot.exists() and shot.stat().st_size > 10000
