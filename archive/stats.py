"""The delivery figures behind GET /v1/stats, `tspipe stats` and the dashboard, read from the rollups only.

One grouped query over `insight_rollup` (and one over `insight_spend`):
the rows of one dimension in the time range are summed per key, time to
final included (its fixed histogram buckets are summed element-wise, then
p50/p90/p99 read off the merged counts); carrier and country also add up
the failure codes kept in those same rows. The raw `events` table is never
read, so a query costs the same whatever the archive's size; what it costs
depends on hours x groups in the range (BENCHMARKS.md, bench/stats.py).
"""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import msgspec
import psycopg

from archive.rollups import ALL_CHANNELS, hour_of
from pipeline import histogram
from pipeline.insight import carrier_name
from pipeline.status_codes import lookup

GROUP_BY = ("channel", "country", "carrier", "status_code", "day", "hour", "action")
CHANNELS = ("sms", "mms", "rcs", "viber", "whatsapp", "email")
DEFAULT_RANGE = timedelta(hours=24)
EARLIEST = datetime(1970, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(2200, 1, 1, tzinfo=timezone.utc)
MAX_FAILURE_CODES = 5
_QUANTILES = (0.5, 0.9, 0.99)


class StatsError(ValueError):
    """A bad parameter: the message names it and says what is accepted (HTTP 400, one CLI line)."""


class TimeToFinal(msgspec.Struct, frozen=True):
    p50: float | None = None
    p90: float | None = None
    p99: float | None = None


class Failure(msgspec.Struct, frozen=True):
    code: int
    description: str | None
    count: int


class Group(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    key: str | None
    sent: int
    final: int
    delivered: int
    read: int
    failed: int
    delivery_rate: float | None
    time_to_final_s: TimeToFinal
    spend: dict[str, str]
    read_rate: float | None = None  # read / final, over the channels that send read receipts
    ttf_histogram: list[tuple[float, float | None, int]] | None = None  # (from, to, count) with ?histogram=1
    label: str | None = None  # carrier: its name; status_code: the code's description
    failures: list[Failure] = []  # carrier and country: their most frequent failure codes
    inbound: int | None = None  # action: inbound messages with that keyword action


class Stats(msgspec.Struct, frozen=True):
    groups: list[Group]


_RELATIVE = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_when(name: str, value: str | None, now: datetime) -> datetime | None:
    """`since`/`until`: ISO 8601 (no zone means UTC), or an age like 24h, 7d, 30m. None when absent."""
    if value is None or value == "":
        return None
    text = value.strip()
    match = _RELATIVE.match(text.lower())
    try:
        if match:
            try:
                when = now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
            except OverflowError:
                return EARLIEST  # an age longer than the calendar: from the beginning
        else:
            when = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
            when = when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)
    except (ValueError, OverflowError):
        raise StatsError(f"{name}: {value!r} is not an ISO 8601 time (2026-11-25T13:00:00Z) or an age (24h, 7d)") from None
    # The rollups hold nothing before 1970 or after 2200: a wider range means the same.
    return min(max(when, EARLIEST), LATEST)


def time_range(since: str | None, until: str | None, now: datetime | None = None) -> tuple[datetime, datetime]:
    """The hours [since, until) the figures cover: since rounds down to its hour; default the last 24 h.

    since at or after until is an empty range (no groups), not an error: it is a well-formed question.
    """
    now = now or datetime.now(timezone.utc)
    end = parse_when("until", until, now) or now
    start = parse_when("since", since, now) or max(end - DEFAULT_RANGE, EARLIEST)
    return hour_of(start), max(end, hour_of(start))  # since after until: an empty range, no groups


def check(group_by: str | None, channel: str | None) -> str:
    if not group_by:
        raise StatsError(f"group_by is required: one of {', '.join(GROUP_BY)}")
    if group_by not in GROUP_BY:
        raise StatsError(f"group_by: {group_by!r} is not one of {', '.join(GROUP_BY)}")
    if channel is not None and channel not in CHANNELS:
        raise StatsError(f"channel: {channel!r} is not one of {', '.join(CHANNELS)}")
    return group_by


_TTF_SUMS = ", ".join(f"sum(ttf[{i + 1}])" for i in range(histogram.N))
# Hourly rows for the partial days at the range's ends, daily rows for the whole days between.
_PERIODS = ("((span = 1 AND (hour >= %(h0)s AND hour < %(d0)s OR hour >= %(d1)s AND hour < %(until)s)) "
            "OR (span = 24 AND hour >= %(d0)s AND hour < %(d1)s))")
_HOURS_ONLY = "span = 1 AND hour >= %(h0)s AND hour < %(until)s"


def _where(dim: str, group_by: str, every_channel: bool) -> str:
    periods = _HOURS_ONLY if group_by == "hour" else _PERIODS
    if group_by == "channel" and every_channel:
        # Each channel's own rows: the all-channel rows of this dimension hold every channel
        # together (key '*'), which is what group_by=day and hour read.
        return f"dim = 'channel' AND channel <> %(channel)s AND {periods}"
    return f"dim = '{dim}' AND channel = %(channel)s AND {periods}"


def _select(key_sql: str, where: str) -> str:
    return (
        f"SELECT {key_sql} AS k, sum(sent), sum(final), sum(delivered), sum(read), sum(failed), sum(inbound), "
        f"sum(rr_read), sum(rr_final), {_TTF_SUMS} FROM insight_rollup WHERE {where} "
        # A message that moved to another group leaves zeros behind in its old one.
        "GROUP BY 1 HAVING sum(sent) <> 0 OR sum(inbound) <> 0"
    )


def periods(since: datetime, until: datetime) -> dict[str, datetime]:
    """h0: first hour; [d0, d1): the whole days inside [h0, until), read from daily rows (empty: d0 = d1)."""
    h0 = hour_of(since)
    d0 = h0 if h0.hour == 0 else (h0.replace(hour=0) + timedelta(days=1))
    d1 = until.replace(hour=0, minute=0, second=0, microsecond=0)
    if d1 <= d0:
        d0 = d1 = h0
    return {"h0": h0, "d0": d0, "d1": d1, "until": until}


def _key_sql(group_by: str) -> tuple[str, str]:
    """(SQL for the group key, the dimension whose rows are summed)."""
    if group_by == "day":
        return "to_char(hour AT TIME ZONE 'UTC', 'YYYY-MM-DD')", "channel"
    if group_by == "hour":
        return "to_char(hour AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:00:00\"Z\"')", "channel"
    return "key", group_by


class Plan(msgspec.Struct, frozen=True):
    """The statements of one stats request: run them on any psycopg connection, sync or async."""

    group_by: str
    params: dict
    counts: str
    spend: str | None
    failures: str | None
    histogram: bool = False


def plan(group_by: str, since: datetime, until: datetime, channel: str | None = None,
         histogram: bool = False) -> Plan:
    group_by = check(group_by, channel)
    key_sql, dim = _key_sql(group_by)
    where = _where(dim, group_by, channel is None)
    spend = None
    if dim != "action":
        spend = (f"SELECT {key_sql}, currency, sum(amount) FROM insight_spend "
                 f"WHERE {where} GROUP BY 1, 2 ORDER BY 1, 2")
    failures = None
    if group_by in ("carrier", "country"):
        # The failure codes kept in the same rows as the counts (a code -> count map as two arrays).
        # unnest() in the select list (one ProjectSet) costs a third less than a lateral unnest() per row.
        failures = ("SELECT key, code, sum(n) FROM (SELECT key, unnest(fail_codes) AS code, unnest(fail_counts) AS n "
                    f"FROM insight_rollup WHERE {where} AND fail_codes IS NOT NULL) AS f "
                    "GROUP BY 1, 2 HAVING sum(n) > 0 ORDER BY 1, 3 DESC, 2")
    return Plan(
        group_by=group_by,
        params={**periods(since, until), "channel": channel or ALL_CHANNELS},
        counts=_select(key_sql, where),
        spend=spend,
        failures=failures,
        histogram=histogram,
    )


def query(conn: psycopg.Connection, group_by: str, since: datetime, until: datetime,
          channel: str | None = None, histogram: bool = False) -> Stats:
    """The figures, on a sync connection (CLI, tests, bench)."""
    p = plan(group_by, since, until, channel, histogram)
    run = lambda statement: conn.execute(statement, p.params).fetchall() if statement else []  # noqa: E731
    return assemble(p, run(p.counts), run(p.spend), run(p.failures))


async def aquery(conn: psycopg.AsyncConnection, group_by: str, since: datetime, until: datetime,
                 channel: str | None = None, histogram: bool = False) -> Stats:
    """The figures, on an async connection (the web process's pool)."""
    p = plan(group_by, since, until, channel, histogram)

    async def run(statement: str | None) -> list:
        return await (await conn.execute(statement, p.params)).fetchall() if statement else []

    return assemble(p, await run(p.counts), await run(p.spend), await run(p.failures))


def assemble(p: Plan, counts: list, spend_rows: list, failure_rows: list) -> Stats:
    spend: dict[str, dict[str, str]] = {}
    for key, currency, amount in spend_rows:
        if amount:
            spend.setdefault(key, {})[currency] = _decimal(amount)
    failures: dict[str, list[Failure]] = {}
    for key, code, count in failure_rows:
        found = failures.setdefault(key, [])
        if len(found) < MAX_FAILURE_CODES:
            found.append(Failure(code=code, description=lookup(code).description, count=int(count)))
    groups = [_group(p.group_by, row, spend.get(row[0], {}), failures.get(row[0], []), p.histogram) for row in counts]
    if p.group_by in ("day", "hour"):
        groups.sort(key=lambda g: g.key or "")
    else:
        groups.sort(key=lambda g: (-g.sent, -(g.inbound or 0), g.key or ""))
    return Stats(groups=groups)


def _decimal(amount: Decimal) -> str:
    """A decimal string without exponent or trailing zeros: 0.0200 -> "0.02", 1E+2 -> "100"."""
    return format(amount.normalize(), "f")


def _buckets(counts: list[int]) -> list[tuple[float, float | None, int]]:
    out = []
    for index, count in enumerate(counts):
        if count:
            lower, upper = histogram.bounds(index)
            out.append((lower, None if upper == float("inf") else round(upper, 3), count))
    return out


def _group(group_by: str, row: tuple, spend: dict[str, str], failures: list[Failure], with_histogram: bool) -> Group:
    key, sent, final, delivered, read, failed, inbound, rr_read, rr_final = row[:9]
    counts = [c or 0 for c in row[9:]]  # sum() of integers: ints, or None where no row counted the bucket
    sent, final, delivered, read, failed = (int(v or 0) for v in (sent, final, delivered, read, failed))
    label = None
    if group_by == "carrier" and key:
        label = carrier_name(key)
    elif group_by == "status_code" and key:
        label = lookup(int(key)).description
    return Group(
        key=key or None,
        sent=sent,
        final=final,
        delivered=delivered,
        read=read,
        failed=failed,
        delivery_rate=round((delivered + read) / final, 6) if final else None,
        time_to_final_s=TimeToFinal(*histogram.percentiles(counts, _QUANTILES)),
        spend=spend,
        read_rate=round(int(rr_read) / int(rr_final), 6) if rr_final else None,
        label=label,
        failures=failures,
        inbound=int(inbound) if group_by == "action" else None,
        ttf_histogram=_buckets(counts) if with_histogram else None,
    )


def to_csv(result: Stats) -> str:
    """One line per group: the JSON's numbers flattened, one spend column per currency."""
    currencies = sorted({c for g in result.groups for c in g.spend})
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["key", "label", "sent", "final", "delivered", "read", "failed", "delivery_rate", "read_rate",
                     "ttf_p50_s", "ttf_p90_s", "ttf_p99_s", "inbound"] + [f"spend_{c}" for c in currencies])
    for g in result.groups:
        ttf = g.time_to_final_s
        writer.writerow(["" if v is None else v for v in (
            g.key, g.label, g.sent, g.final, g.delivered, g.read, g.failed, g.delivery_rate, g.read_rate,
            ttf.p50, ttf.p90, ttf.p99, g.inbound)] + [g.spend.get(c, "") for c in currencies])
    return out.getvalue()


def alert_counts(conn: psycopg.Connection, hours: list[datetime],
                 dims: tuple[str, ...] = ("channel", "country", "carrier")) -> dict[tuple[str, str], tuple[int, int]]:
    """(final, delivered or read) per (dimension, key) over the given hours, for the alert evaluator."""
    # A channel's own rows count it (the all-channel rows of dimension channel count every channel together).
    rows = conn.execute(
        "SELECT dim, key, sum(final), sum(delivered) + sum(read) FROM insight_rollup "
        "WHERE dim = ANY(%s) AND (channel = %s) = (dim <> 'channel') AND span = 1 AND hour = ANY(%s) "
        "AND key <> '' GROUP BY 1, 2",
        (list(dims), ALL_CHANNELS, hours),
    ).fetchall()
    return {(dim, key): (int(final), int(good)) for dim, key, final, good in rows}
