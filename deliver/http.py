"""One signed webhook POST on the delivery engine's event loop (aiohttp's client).

A receiver that never answers holds one of its destination's connections
until the destination's timeout, never a process: the session carries the
destination's connection limit and timeout (deliver/engine.py).
"""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime

import aiohttp

from pipeline.webhooks import sign

RETRY_STATUSES = {408, 429}


class DeliveryFailed(Exception):
    """A POST did not succeed. `retryable` says whether trying again can help."""

    def __init__(self, message: str, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


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


async def post(session: aiohttp.ClientSession, url: str, key: bytes, msg_id: str, body: bytes) -> int:
    """POST one signed body; returns the status on 2xx, raises DeliveryFailed otherwise.

    The session carries the destination's timeout and connection limit.
    """
    timestamp = int(time.time())
    headers = {
        "content-type": "application/json",
        "user-agent": "tspipe-webhooks/1",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(key, msg_id, timestamp, body),
    }
    try:
        async with session.post(url, data=body, headers=headers, allow_redirects=False) as response:
            await response.read()
            code = response.status
            if 200 <= code < 300:
                return code
            retryable = code in RETRY_STATUSES or code >= 500
            raise DeliveryFailed(f"HTTP {code}", retryable, _retry_after(response.headers.get("retry-after")))
    except TimeoutError:
        raise DeliveryFailed("timeout: no answer within the destination's timeout", True) from None
    except (aiohttp.ClientError, OSError) as exc:
        raise DeliveryFailed(f"{type(exc).__name__}: {exc}", True) from None
