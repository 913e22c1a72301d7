"""Signed outgoing webhooks, the Standard Webhooks way (https://www.standardwebhooks.com).

Headers: webhook-id (the event id, or a hash of a batch's ids: stable across
retries, so receivers can deduplicate), webhook-timestamp (unix seconds of
this attempt) and webhook-signature = "v1," + base64(HMAC-SHA256(secret,
"{id}.{timestamp}.{body}")). A secret written "whsec_<base64>" is the
standard's format and is base64-decoded; any other secret is used as UTF-8.

Delivery order is not promised: retries and parallel workers reorder events.
The stdlib HTTP client keeps the worker free of an event loop; one POST per
task is nowhere near where time goes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
import time
import urllib.error
import urllib.request
from email.utils import parsedate_to_datetime

RETRY_STATUSES = {408, 429}


class DeliveryFailed(Exception):
    """A POST did not succeed. `retryable` says whether trying again can help."""

    def __init__(self, message: str, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


def secret_bytes(secret: str) -> bytes:
    if secret.startswith("whsec_"):
        return base64.b64decode(secret[len("whsec_"):])
    return secret.encode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    to_sign = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_bytes(secret), to_sign, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def batch_id(event_ids: list[str]) -> str:
    """One event: its own id. A batch: a hash of its ids, the same on every retry of that batch."""
    if len(event_ids) == 1:
        return event_ids[0]
    return "batch_" + hashlib.sha256("\n".join(event_ids).encode()).hexdigest()[:32]


def backoff(attempt: int, base: float, cap: float) -> float:
    """Exponential backoff with full jitter (AWS architecture blog): spreads a thundering herd."""
    return random.uniform(0, min(cap, base * (2 ** max(attempt - 1, 0))))


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def post(url: str, secret: str, msg_id: str, body: bytes, timeout: float) -> int:
    """POST one signed body; returns the status on 2xx, raises DeliveryFailed otherwise."""
    timestamp = int(time.time())
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "content-type": "application/json",
        "user-agent": "tspipe-webhooks/1",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
    })
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as exc:
        code = exc.code
        retryable = code in RETRY_STATUSES or code >= 500
        raise DeliveryFailed(f"HTTP {code}", retryable, _retry_after(exc.headers.get("retry-after"))) from None
    except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DeliveryFailed(f"{type(reason).__name__}: {reason}", True) from None
