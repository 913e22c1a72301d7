"""`tspipe send-samples`: POST Telesign's own example payloads to a running tspipe, signed like Telesign signs.

So a new user sees events flow without a Telesign account: each sample goes
to its channel's route, with unique reference ids per copy so that state,
dedup and opt-outs behave as they would with real traffic.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from importlib import resources

import aiohttp
import click

from tspipe.context import settings_or_exit
from pipeline.signature import decode_api_key, sign

# Sample file stem prefix -> route channel (the file names say which channel each example is for).
ROUTES = {"mo_email": "email", "mo_mms": "mms", "mo_rcs": "rcs", "mo_sms": "sms", "mo_viber": "viber",
          "mo_whatsapp": "whatsapp", "read_": "whatsapp", "delivery_": "sms"}
SAMPLE_REF = b"0123456789ABCDEF0123456789ABCDEF"
SAMPLE_REF_2 = b"35C8B5D509BC10689196FED2AD551B8A"


def load_samples() -> list[tuple[str, str, bytes]]:
    """(name, channel, body) for every bundled sample."""
    out = []
    for entry in sorted(resources.files("tspipe.samples").iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".json"):
            channel = next(ch for prefix, ch in ROUTES.items() if entry.name.startswith(prefix))
            out.append((entry.name[:-5], channel, entry.read_bytes()))
    return out


def unique(body: bytes, n: int) -> bytes:
    """Copy n of a sample with its own reference id (same length, so the body stays valid)."""
    if n == 0:
        return body
    tag = b"%032X" % n
    return body.replace(SAMPLE_REF, tag).replace(SAMPLE_REF_2, tag)


async def send(url: str, count: int, rate: float | None, api_key: str | None, customer_id: str | None) -> Counter[str]:
    samples = load_samples()
    statuses: Counter[str] = Counter()
    interval = 1.0 / rate if rate else 0.0
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        start = time.monotonic()
        for i in range(count):
            name, channel, body = samples[i % len(samples)]
            body = unique(body, i // len(samples))
            headers = {"Content-Type": "application/json"}
            if api_key is not None:
                headers["Authorization"] = auth_header(api_key, customer_id, body)
            try:
                async with session.post(f"{url}/callbacks/{channel}", data=body, headers=headers) as response:
                    statuses[str(response.status)] += 1
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                statuses[f"error: {type(exc).__name__}"] += 1
            if interval:
                await asyncio.sleep(max(0.0, start + (i + 1) * interval - time.monotonic()))
    return statuses


def auth_header(api_key: str, customer_id: str | None, body: bytes) -> str:
    """Telesign's callback Authorization header: `TSA <customer_id>:<signature>`, or the bare signature."""
    signature = sign(decode_api_key(api_key), body)
    return f"TSA {customer_id}:{signature}" if customer_id else signature


@click.command("send-samples")
@click.option("--url", default=None, help="Base URL of the web process (default: http://127.0.0.1:$PORT).")
@click.option("--count", type=click.IntRange(min=1), default=None, help="Callbacks to send (default: one of each sample).")
@click.option("--rate", type=click.FloatRange(min=0.1), default=None, help="Callbacks per second (default: as fast as answered).")
def send_samples_command(url: str | None, count: int | None, rate: float | None) -> None:
    """POST the bundled Telesign example callbacks, signed when TELESIGN_API_KEY is set."""
    settings = settings_or_exit("send-samples")
    url = (url or f"http://127.0.0.1:{settings.port}").rstrip("/")
    key = settings.telesign_api_keys[0] if settings.telesign_api_keys else None
    statuses = asyncio.run(send(url, count or len(load_samples()), rate, key, settings.telesign_customer_id))
    for status, n in sorted(statuses.items()):
        click.echo(f"{status}: {n}")
    if set(statuses) != {"200"}:
        click.echo(f"tspipe send-samples: not every callback was accepted by {url}", err=True)
        sys.exit(1)
