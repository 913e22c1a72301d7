"""POST /v1/opt-outs/check: which of up to 1,000 addresses are opted out, before a sender sends to them.

One Redis command (one round trip) however many addresses are asked about
(store/suppression.py). Bearer-token protected like the other read
routes. The body is read with its own bound, since the ingress's
client_max_size is sized for callbacks and 1,000 e-mail addresses can be
larger than a callback.
"""

from __future__ import annotations

import msgspec
import redis.asyncio as aioredis
from aiohttp import hdrs, web

from config import Settings
from ingest.read_access import STORE_KEY, token_denied, use_store_client
from ingest.request_counts import add_counted
from store.erasure import optout_digester
from store.suppression import CHECK_MAX, check_async, normalize_address

ROUTE = "/v1/opt-outs/check"
ADDRESS_MAX = 320  # the longest e-mail address RFC 3696 allows
BODY_MAX = CHECK_MAX * (ADDRESS_MAX + 8) + 1024


class CheckRequest(msgspec.Struct, forbid_unknown_fields=True):
    addresses: list[str]


_decoder = msgspec.json.Decoder(CheckRequest)
_encoder = msgspec.json.Encoder()


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def _body(request: web.Request) -> bytes | None:
    """The body, or None when it is larger than BODY_MAX."""
    if request.content_length is not None and request.content_length > BODY_MAX:
        return None
    body = await request.content.read(BODY_MAX + 1)
    while len(body) <= BODY_MAX and not request.content.at_eof():
        more = await request.content.read(BODY_MAX + 1 - len(body))
        if not more:
            break
        body += more
    return None if len(body) > BODY_MAX else body


def parse_check(body: bytes) -> list[str] | str:
    """The normalized addresses asked about, or the reason the request is refused."""
    try:
        asked = _decoder.decode(body).addresses
    except msgspec.DecodeError as exc:
        return f'body must be {{"addresses": ["<phone number or e-mail>", ...]}}: {exc}'
    if not asked:
        return "addresses must not be empty"
    if len(asked) > CHECK_MAX:
        return f"at most {CHECK_MAX} addresses per request, got {len(asked)}"
    # Almost always plain digits: checked with C-level loops, not one Python call per address.
    if "".join(asked).isdigit() and min(map(len, asked)) > 0 and max(map(len, asked)) <= ADDRESS_MAX:
        return asked
    addresses = []
    for index, raw in enumerate(asked):
        address = normalize_address(raw)
        if not address or len(address) > ADDRESS_MAX:
            return f"addresses[{index}] is neither a phone number nor an e-mail"
        addresses.append(address)
    return addresses


def setup_optout_check(app: web.Application, settings: Settings) -> None:
    """Add POST /v1/opt-outs/check to `app`."""
    token = settings.api_token
    use_store_client(app, settings)
    # An erased address keeps its opt-out under a keyed hash (store/erasure.py), as GET /v1/opt-outs reads it.
    erased_digest = optout_digester(settings.erasure_key) if settings.erasure_key else None

    async def check(request: web.Request) -> web.Response:
        if denied := token_denied(request, token):
            return denied
        body = await _body(request)
        if body is None:
            return _error(400, f"body larger than {BODY_MAX} bytes; at most {CHECK_MAX} addresses per request")
        addresses = parse_check(body)
        if isinstance(addresses, str):
            return _error(400, addresses)
        try:
            found = await check_async(request.app[STORE_KEY], addresses, erased_digest)
        except (aioredis.ConnectionError, aioredis.TimeoutError, OSError):
            return _error(503, "the opt-out list is unreachable; retry later")
        return web.Response(body=_encoder.encode({"checked": len(addresses), "opted_out": found}),
                            content_type="application/json")

    add_counted(app, hdrs.METH_POST, ROUTE, check)
