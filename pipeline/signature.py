"""Telesign callback signatures: pure, so the ingress and any tool can check them.

Telesign signs the raw body only: signature = base64(HMAC-SHA256(key =
base64-decode(api_key), msg = body)), sent in `Authorization` or
`X-TS-Authorization` as `TSA <customer_id>:<signature>` or bare. There is no
timestamp, so deduplication downstream is the replay defence.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable, Mapping

SIGNATURE_HEADERS = ("Authorization", "X-TS-Authorization")
_SIG_BYTES = hashlib.sha256().digest_size
# Telesign's keys decode to 64 bytes. Anything under 16 is a mistake (an env file's `KEY=""` gives
# the two characters `""`, which decode to no bytes at all), and an HMAC under an empty or tiny
# key is one anybody can compute: refuse it at start-up.
MIN_KEY_BYTES = 16
_BLOCK = hashlib.sha256().block_size


class SignatureError(ValueError):
    """Why a callback's signature was refused; `reason` is a short label for metrics."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def decode_api_key(api_key: str) -> bytes:
    """Decode leniently, as Python's default b64decode does, because the contract's test vector relies on it.

    Raises ValueError, without the key in the message, when it is not base64 or decodes to fewer
    than MIN_KEY_BYTES: lenient decoding drops every character outside the alphabet, so `'""'`,
    `'===='` or `'!!!!'` would otherwise become an empty key that signs anything.
    """
    try:
        key = base64.b64decode(api_key)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"is not base64 ({exc}); paste the API key exactly as the Telesign portal shows it") from None
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"decodes to {len(key)} bytes, fewer than {MIN_KEY_BYTES}: this is not a Telesign API key "
                         "(an env file's KEY=\"\" gives the two characters \"\"); paste the key from the Telesign portal")
    return key


def sign(key: bytes, body: bytes) -> str:
    """The base64 signature Telesign would send for `body` under the decoded key."""
    return base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode("ascii")


class _KeyedSha256:
    """HMAC-SHA256 under one fixed key, with the keyed inner and outer states computed once.

    The textbook construction (RFC 2104, as CPython's own pure-Python hmac does it):
    H((K ^ opad) || H((K ^ ipad) || msg)). Copying the two prepared states costs
    ~1.0 us per 700-byte body where hmac.digest() costs ~1.8 us, most of it
    OpenSSL setting up the same key again on every call. Tested against hmac.digest.
    """

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes) -> None:
        if len(key) > _BLOCK:
            key = hashlib.sha256(key).digest()
        key = key.ljust(_BLOCK, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))

    def digest(self, message: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()


class SignatureVerifier:
    """Checks one callback against every configured key (several during a rotation).

    Keys are decoded once at start-up: a bad key is a configuration error, not a
    per-request surprise.
    """

    def __init__(self, api_keys: Iterable[str], customer_id: str | None = None) -> None:
        self._keys = tuple(_KeyedSha256(decode_api_key(k)) for k in api_keys)
        self._customer_id = None if customer_id is None else customer_id.encode()

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    def header_value(self, headers: Mapping[str, str]) -> str | None:
        for name in SIGNATURE_HEADERS:
            value = headers.get(name)
            if value:
                return value
        return None

    def verify(self, header: str | None, body: bytes) -> None:
        """Return when the signature is good; raise SignatureError saying why otherwise."""
        if not self._keys:
            return
        if not header:
            raise SignatureError("missing", "missing Authorization header with a Telesign signature")
        value = header.strip()
        if value[:4].upper() == "TSA ":
            credentials = value[4:].strip()
            customer_id, sep, signature = credentials.rpartition(":")
            if not sep or not customer_id:
                raise SignatureError("malformed", "Authorization must be 'TSA <customer_id>:<signature>'")
            if self._customer_id is not None and not hmac.compare_digest(
                customer_id.strip().encode(), self._customer_id
            ):
                raise SignatureError("customer_id", "customer id in Authorization does not match")
        else:
            signature = value
        try:
            given = binascii.a2b_base64(signature.strip(), strict_mode=True)  # = b64decode(validate=True)
        except (binascii.Error, ValueError):
            raise SignatureError("malformed", "signature is not valid base64") from None
        if len(given) != _SIG_BYTES:
            raise SignatureError("malformed", "signature has the wrong length")
        for key in self._keys:
            if hmac.compare_digest(key.digest(body), given):
                return
        raise SignatureError("mismatch", "signature does not match the body")
