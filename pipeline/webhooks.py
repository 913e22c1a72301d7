"""Signed outgoing webhooks, the Standard Webhooks way (https://www.standardwebhooks.com).

Headers: webhook-id (the event id, or a hash of a batch's ids: stable across
retries, so receivers can deduplicate), webhook-timestamp (unix seconds of
this attempt) and webhook-signature = "v1," + base64(HMAC-SHA256(secret,
"{id}.{timestamp}.{body}")). A secret is the standard's "whsec_" followed by
the base64 of the key bytes, the only form Standard Webhooks libraries (svix
and the others) accept; `new_secret()` makes one.

Delivery order is not promised: retries and parallel requests reorder events.
The POST itself is deliver/http.py, on the delivery engine's event loop.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import random
import secrets

import msgspec

SECRET_PREFIX = "whsec_"
# Standard Webhooks asks for 24 to 64 random bytes; fewer than 16 is too weak to sign anything with.
MIN_SECRET_BYTES = 16
NEW_SECRET_BYTES = 32


def secret_bytes(secret: str) -> bytes:
    """The key of a "whsec_<base64>" secret; ValueError (saying what to write instead) for anything else."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("secret must be 'whsec_' followed by base64, as Standard Webhooks libraries expect; "
                         "make one with `tspipe destinations new-secret`")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX):], validate=True)
    except binascii.Error:
        raise ValueError("secret is not valid base64 after 'whsec_'; make one with `tspipe destinations new-secret`") from None
    if len(key) < MIN_SECRET_BYTES:
        raise ValueError(f"secret decodes to {len(key)} bytes, fewer than {MIN_SECRET_BYTES}; "
                         "make one with `tspipe destinations new-secret`")
    return key


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(NEW_SECRET_BYTES)).decode()


def sign(secret: str | bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """`secret` is a "whsec_" secret, or its key bytes already decoded (the engine decodes once)."""
    key = secret if isinstance(secret, bytes) else secret_bytes(secret)
    to_sign = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, to_sign, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def batch_id(event_ids: list[str]) -> str:
    """One event: its own id. A batch: a hash of its ids, the same on every retry of that batch."""
    if len(event_ids) == 1:
        return event_ids[0]
    return "batch_" + hashlib.sha256("\n".join(event_ids).encode()).hexdigest()[:32]


class _IdOnly(msgspec.Struct):
    event_id: str


_one = msgspec.json.Decoder(_IdOnly)
_many = msgspec.json.Decoder(list[_IdOnly])


def event_ids(body: bytes) -> list[str]:
    """The event ids in a webhook body: one event, or a JSON array of them (batch_size > 1)."""
    if body.lstrip().startswith(b"["):
        return [e.event_id for e in _many.decode(body)]
    return [_one.decode(body).event_id]


def message_id(body: bytes) -> str:
    """The webhook-id: derived from the body's event ids, so every retry and replay carries the same one."""
    return batch_id(event_ids(body))


def backoff(attempt: int, base: float, cap: float) -> float:
    """Exponential backoff with full jitter (AWS architecture blog): spreads a thundering herd."""
    return random.uniform(0, min(cap, base * (2 ** max(attempt - 1, 0))))
