"""The search behind GET /v1/events and `tspipe events search` (CONTRACT section 7).

Newest occurred_at first, ties by event_id, paged by a keyset cursor: the
cursor is the (occurred_at, event_id) of the last event of a page, and the
next page is everything strictly after it in that order. An event that
arrives while someone pages is either before the cursor (not shown, it is
newer than the pages already read) or after it (shown once), so following
next_cursor until null visits every match exactly once. Each narrow filter
has an index in that order (migrations/0001_events.sql), so a page costs an
index range scan per day partition, whatever the table's size.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from datetime import datetime, timezone

import msgspec
from psycopg import sql

from archive.rows import normalize_email, normalize_phone
from pipeline.event import Channel, Kind, Outcome

LIMIT_DEFAULT = 100
LIMIT_MAX = 1000
FILTERS = ("reference_id", "phone_number", "email", "kind", "outcome", "channel", "since", "until", "limit", "cursor", "raw")


class BadQuery(ValueError):
    """A search parameter that cannot be used; the message names it and says what is accepted."""


class EventQuery(msgspec.Struct, frozen=True, kw_only=True):
    reference_id: str | None = None
    phone_number: str | None = None
    email: str | None = None
    kind: str | None = None
    outcome: str | None = None
    channel: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = LIMIT_DEFAULT
    after: tuple[datetime, str] | None = None
    raw: bool = False


def _choice(name: str, value: str, options: type) -> str:
    allowed = [member.value for member in options]
    if value not in allowed:
        raise BadQuery(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
    return value


_PLUS_AS_SPACE = re.compile(r"(T[\d:.]+) (\d\d:?\d\d)$")


def _time(name: str, value: str) -> datetime:
    # An unencoded '+' of a zone offset reaches us as a space: "2026-11-25T13:00:00 01:00".
    text = _PLUS_AS_SPACE.sub(r"\1+\2", value.strip()).replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise BadQuery(f"{name} must be an ISO 8601 time such as 2026-11-25T13:00:00Z, got {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def encode_cursor(occurred_at: datetime, event_id: str) -> str:
    text = f"{occurred_at.astimezone(timezone.utc).isoformat()}|{event_id}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(value: str) -> tuple[datetime, str]:
    try:
        text = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        when, event_id = text.split("|", 1)
        return datetime.fromisoformat(when), event_id
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadQuery("cursor is not one this server gave out (use next_cursor as it was returned)") from None


def parse_query(params: Mapping[str, str]) -> EventQuery:
    """Validate query parameters into an EventQuery; BadQuery names the first bad one."""
    unknown = sorted(set(params) - set(FILTERS))
    if unknown:
        raise BadQuery(f"unknown parameter {unknown[0]!r}; known: {', '.join(FILTERS)}")
    values: dict = {}
    # Free-text filters may be empty (no filter); typed ones, once given, must be valid.
    if params.get("reference_id"):
        values["reference_id"] = params["reference_id"]
    if "phone_number" in params:
        phone = normalize_phone(params["phone_number"])
        if phone is None:
            raise BadQuery(f"phone_number must hold digits (E.164 such as +11234567890), got {params['phone_number']!r}")
        values["phone_number"] = phone
    if params.get("email"):
        values["email"] = normalize_email(params["email"])
    if "kind" in params:
        values["kind"] = _choice("kind", params["kind"], Kind)
    if "outcome" in params:
        values["outcome"] = _choice("outcome", params["outcome"], Outcome)
    if "channel" in params:
        values["channel"] = _choice("channel", params["channel"], Channel)
    for name in ("since", "until"):
        if name in params:
            values[name] = _time(name, params[name])
    if "limit" in params:
        try:
            limit = int(params["limit"])
        except ValueError:
            limit = 0
        if not 1 <= limit <= LIMIT_MAX:
            raise BadQuery(f"limit must be an integer from 1 to {LIMIT_MAX}, got {params['limit']!r}")
        values["limit"] = limit
    if params.get("cursor"):
        values["after"] = decode_cursor(params["cursor"])
    if "raw" in params:
        if params["raw"] not in ("0", "1"):
            raise BadQuery(f"raw must be 1 or 0, got {params['raw']!r}")
        values["raw"] = params["raw"] == "1"
    return EventQuery(**values)


def build(query: EventQuery) -> tuple[sql.Composed, list]:
    """The SELECT for one page (limit + 1 rows, to know whether another page follows)."""
    where: list[sql.Composable] = []
    args: list = []
    for column in ("reference_id", "phone_number", "email", "kind", "outcome", "channel"):
        value = getattr(query, column)
        if value is not None:
            where.append(sql.SQL("{} = %s").format(sql.Identifier(column)))
            args.append(value)
    if query.since is not None:
        where.append(sql.SQL("occurred_at >= %s"))
        args.append(query.since)
    if query.until is not None:
        where.append(sql.SQL("occurred_at <= %s"))
        args.append(query.until)
    if query.after is not None:
        # The row comparison is the keyset; the plain bound on occurred_at lets PostgreSQL skip
        # every day partition newer than the cursor instead of probing each one's index.
        where.append(sql.SQL("occurred_at <= %s AND (occurred_at, event_id) < (%s, %s)"))
        args += [query.after[0], *query.after]
    raw = sql.SQL(", raw") if query.raw else sql.SQL("")
    statement = sql.SQL("SELECT occurred_at, event_id, event::text{} FROM events{} "
                        "ORDER BY occurred_at DESC, event_id DESC LIMIT %s").format(
        raw, sql.SQL(" WHERE ") + sql.SQL(" AND ").join(where) if where else sql.SQL(""))
    args.append(query.limit + 1)
    return statement, args


_json = msgspec.json.Encoder()


def event_bytes(event_text: str, raw: bytes | None) -> bytes:
    """One event of a page: the stored JSON, plus `raw` (text) or `raw_b64` when the body was asked for."""
    data = event_text.encode()
    if raw is None:
        return data
    try:
        extra = b',"raw":' + _json.encode(bytes(raw).decode("utf-8"))
    except UnicodeDecodeError:
        extra = b',"raw_b64":' + _json.encode(base64.b64encode(bytes(raw)).decode())
    return data[:-1] + extra + b"}"


def page(rows: list[tuple], query: EventQuery) -> bytes:
    """The response body: {"events": [...], "next_cursor": ...} from the rows `build` selected."""
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    events = [event_bytes(r[2], r[3] if query.raw else None) for r in rows]
    cursor = encode_cursor(rows[-1][0], rows[-1][1]) if more else None
    return b'{"events":[' + b",".join(events) + b'],"next_cursor":' + _json.encode(cursor) + b"}"


# Planning a query over ~91 day partitions costs several times more than running it (8-10 ms against
# 1-2 ms over 10 million events, bench/search.py). So searches run as prepared statements with a
# generic plan: planned once per connection and filter combination, the partitions outside a time
# range or newer than a cursor pruned at run time. SET LOCAL keeps the setting to the search's own
# transaction: the stats queries sharing the web's pool keep PostgreSQL's usual choice.
GENERIC_PLAN = "SET LOCAL plan_cache_mode = force_generic_plan"


def fetch(conn, statement, args) -> list[tuple]:
    """Run a search statement (or transactions.SELECT) on a sync connection, with a generic plan."""
    with conn.transaction():
        conn.execute(GENERIC_PLAN)
        return conn.execute(statement, args, prepare=True).fetchall()


async def fetch_async(conn, statement, args) -> list[tuple]:
    """fetch() on an async connection (the web process's pool)."""
    async with conn.transaction():
        await conn.execute(GENERIC_PLAN)
        return await (await conn.execute(statement, args, prepare=True)).fetchall()


def search(conn, query: EventQuery) -> bytes:
    """Run one page of a search on a sync connection (the CLI); the web process runs `build` on its async pool."""
    statement, args = build(query)
    return page(fetch(conn, statement, args), query)
