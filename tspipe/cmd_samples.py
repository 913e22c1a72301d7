"""`tspipe send-samples`: POST Telesign's own example payloads to a running tspipe, signed like Telesign signs.

So a new user sees events flow without a Telesign account: each sample goes
to its channel's route as real traffic would look. Every run gets reference
ids of its own (so a second run, or a fixture posted with curl afterwards, is
not a duplicate of it) and each sample's `status.updated_on` is the time it
is sent (so a STOP or START sent now is newer than any sent before it, and
wins, as it would from a real phone). `--as-is` sends the files unchanged.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
import time
from collections import Counter
from datetime import datetime, timezone
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


def unique(body: bytes, n: int, run: int = 0) -> bytes:
    """Copy n of a sample, in run `run`, with its own reference id (same length, so the body stays valid)."""
    if n == 0 and run == 0:
        return body
    tag = b"%08X%024X" % (run, n)
    return body.replace(SAMPLE_REF, tag).replace(SAMPLE_REF_2, tag)


def reference_id(n: int, run: int) -> str:
    return unique(SAMPLE_REF, n, run).decode()


def sent_now(body: bytes) -> bytes:
    """The sample with `status.updated_on` set to now, in RFC 3339 with microseconds."""
    data = json.loads(body)
    data["status"]["updated_on"] = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return json.dumps(data).encode()


def select(only: tuple[str, ...]) -> list[tuple[str, str, bytes]]:
    """The samples whose names start with one of `only` (all when empty); UsageError naming the choices."""
    samples = load_samples()
    chosen = [s for s in samples if not only or s[0].startswith(only)]
    if not chosen:
        names = ", ".join(name for name, _, _ in samples)
        raise click.UsageError(f"no sample named {' or '.join(only)}; samples: {names}")
    return chosen


async def send(url: str, count: int, rate: float | None, api_key: str | None, customer_id: str | None,
               samples: list[tuple[str, str, bytes]] | None = None, run: int = 0, now: bool = False) -> Counter[str]:
    samples = samples or load_samples()
    statuses: Counter[str] = Counter()
    interval = 1.0 / rate if rate else 0.0
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        start = time.monotonic()
        for i in range(count):
            name, channel, body = samples[i % len(samples)]
            body = unique(body, i // len(samples), run)
            if now:
                body = sent_now(body)
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
@click.option("--only", multiple=True, metavar="NAME",
              help="Only the samples whose names start with NAME (repeatable), e.g. mo_sms_keyword_start.")
@click.option("--as-is", "as_is", is_flag=True,
              help="Send the sample files unchanged: their own reference ids and times (default: fresh ids, current times).")
def send_samples_command(url: str | None, count: int | None, rate: float | None, only: tuple[str, ...],
                         as_is: bool) -> None:
    """POST the bundled Telesign example callbacks, signed when TELESIGN_API_KEY is set."""
    settings = settings_or_exit("send-samples")
    samples = select(only)
    url = (url or f"http://127.0.0.1:{settings.port}").rstrip("/")
    key = settings.telesign_api_keys[0] if settings.telesign_api_keys else None
    count = count or len(samples)
    run = 0 if as_is else secrets.randbits(32) or 1
    statuses = asyncio.run(send(url, count, rate, key, settings.telesign_customer_id, samples, run, now=not as_is))
    for status, n in sorted(statuses.items()):
        click.echo(f"{status}: {n}")
    if not as_is:
        copies = (count - 1) // len(samples)
        last = f" to {reference_id(copies, run)}" if copies else ""
        click.echo(f"reference ids: {reference_id(0, run)}{last}")
    if set(statuses) != {"200"}:
        click.echo(f"tspipe send-samples: not every callback was accepted by {url}", err=True)
        sys.exit(1)
