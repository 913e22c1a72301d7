"""Read-only query API on the web process: message state and the opt-out list.

Mounted by the ingress with `setup_query_api(app, settings)`. Reads go
straight to the store's keys with redis.asyncio (one round trip per request,
pipelined where a page needs several keys). Bearer-token protected when
TSPIPE_API_TOKEN is set, because state and opt-outs carry phone numbers;
loopback clients only when it is not (ingest/read_access.py).
"""

from __future__ import annotations

import re

import msgspec
from aiohttp import web

from config import Settings
from ingest.archive_api import archived_transaction
from ingest.read_access import STORE_KEY, store_errors_as_503, token_denied, use_store_client
from store.erasure import optout_digest
from ingest.request_counts import add_get
from store import keys, message
from store.optouts import optout_from_hash

PAGE_MAX = 1000
CURSOR_DIGITS = 15
_DIGITS = re.compile(r"[0-9]+")


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _json(data: object) -> web.Response:
    return web.Response(body=msgspec.json.encode(data), content_type="application/json")


def setup_query_api(app: web.Application, settings: Settings) -> None:
    """Add GET /v1/transactions/{reference_id}, /v1/opt-outs/{address} and /v1/opt-outs to `app`."""
    token = settings.api_token

    use_store_client(app, settings)

    async def transaction(request: web.Request) -> web.Response:
        if denied := token_denied(request, token):
            return denied
        ref = request.match_info["reference_id"]
        found = await message.read_async(request.app[STORE_KEY], ref)
        if found is None:
            archived = await archived_transaction(request.app, ref)
            if archived is not None:
                return web.Response(body=archived, content_type="application/json")
            return _error(404, f"unknown reference_id {ref!r}")
        return _json(found)

    async def optout(request: web.Request) -> web.Response:
        if denied := token_denied(request, token):
            return denied
        address = request.match_info["address"]
        data = await request.app[STORE_KEY].hgetall(keys.OPTOUT.format(address=address))
        if not data and settings.erasure_key and address.strip():
            # An erased address keeps its opt-out under a keyed hash (store/erasure.py).
            digest = optout_digest(settings.erasure_key, address)
            data = await request.app[STORE_KEY].hgetall(keys.OPTOUT_ERASED.format(digest=digest))
        if not data:
            return _error(404, f"no opt-out record for {address!r}")
        return _json(optout_from_hash(address, data))

    async def optouts(request: web.Request) -> web.Response:
        if denied := token_denied(request, token):
            return denied
        cursor, size = request.query.get("cursor") or "0", request.query.get("limit") or "100"
        # Digits only (int() would take " 5", "+5", "5_0"), and a cursor this API could have given:
        # Redis answers an error, not an empty page, for an index past 64 bits.
        if not (_DIGITS.fullmatch(cursor) and len(cursor) <= CURSOR_DIGITS and _DIGITS.fullmatch(size)) or size.strip("0") == "":
            return _error(400, "cursor must be a next_cursor from this API and limit a positive integer")
        offset, limit = int(cursor), min(int(size), PAGE_MAX)
        client = request.app[STORE_KEY]
        addresses = await client.zrange(keys.OPTOUT_INDEX, offset, offset + limit - 1)
        pipe = client.pipeline(transaction=False)
        for address in addresses:
            pipe.hgetall(keys.OPTOUT.format(address=address.decode()))
        rows = await pipe.execute() if addresses else []
        items = [optout_from_hash(a.decode(), row) for a, row in zip(addresses, rows)]
        next_cursor = str(offset + limit) if len(addresses) == limit else None
        return _json({"items": items, "next_cursor": next_cursor})

    add_get(app, "/v1/transactions/{reference_id}", store_errors_as_503(transaction))
    add_get(app, "/v1/opt-outs/{address}", store_errors_as_503(optout))
    add_get(app, "/v1/opt-outs", store_errors_as_503(optouts))
