"""Hourly rollups of the delivery figures, kept in the archive writer's transaction (see writer.py).

The figures (README, "Delivery insight") count messages, not callbacks: a
message gets several callbacks, arrives out of order, and only its best
final status counts (CONTRACT section 4's state rules). So each message has
one row in `insight_messages` saying what it currently counts as: the hour
it was sent, its channel, country and carrier, its final status and when,
its spend. A new callback moves the message from what it counted as to what
it counts as now: the rollups get `contribution(new) - contribution(old)`,
so a message is in each figure exactly once, whatever the order of its
callbacks, and the rows always add up to the archive they were built from.

Every figure of a message is filed under the hour it was sent (its
submit_timestamp, else its earliest callback): the delivery rate of an hour
is that of the messages sent in it, and delivered never exceeds sent. Each
contribution goes to an hourly and a daily row, for its channel and for all
channels: a 30-day query then reads 30 daily rows per group plus the hours
of its two partial days, not 720 hours times six channels (bench/stats.py).

Only rows new to the archive reach here (the writer's idempotence), so a
redelivered batch adds nothing. Rows are locked in reference-id and key
order, so concurrent workers wait for each other but never deadlock.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import msgspec
import psycopg

from archive.rows import ArchiveRow
from pipeline import histogram
from pipeline.event import Event, Outcome
from pipeline.insight import Facts, facts_of
from pipeline.status_codes import READ_RECEIPT_CHANNELS

# rr_final and rr_read: final and read messages on channels that send read receipts (the read rate).
COUNTERS = ("sent", "final", "delivered", "read", "failed", "inbound", "rr_final", "rr_read")
MESSAGE_KINDS = frozenset({"delivery", "read", "verify"})
FAILED = frozenset({Outcome.FAILED.value, Outcome.BLOCKED.value, Outcome.REJECTED.value})
_SENT, _FINAL, _DELIVERED, _READ, _FAILED, _INBOUND, _RR_FINAL, _RR_READ = range(len(COUNTERS))


class MessageState(msgspec.Struct, kw_only=True):
    """What one message currently counts as (a row of insight_messages)."""

    reference_id: str
    hour: datetime | None = None
    first_at: datetime | None = None
    channel: str = ""
    country: str = ""
    carrier: str = ""
    final_code: int | None = None
    final_outcome: str | None = None
    final_rank: int | None = None
    final_at: datetime | None = None
    currency: str | None = None
    spend: Decimal | None = None


_STATE_COLUMNS = tuple(f.name for f in msgspec.structs.fields(MessageState))


def hour_of(when: datetime) -> datetime:
    return when.replace(minute=0, second=0, microsecond=0)


def final_rank(event: Event) -> int:
    """Read beats any other final status, which beats nothing (the state store's order among final statuses)."""
    return 3 if event.status.outcome is Outcome.READ else 2


def _is_plmn(carrier: str) -> bool:
    mcc, sep, mnc = carrier.partition("-")
    return bool(sep) and mcc.isdigit() and mnc.isdigit()


def advance(state: MessageState, event: Event, facts: Facts) -> MessageState:
    """The message's state after one more callback (pure; `state` is not changed)."""
    new = msgspec.structs.replace(state)
    when = event.occurred_at or event.received_at
    if facts.submitted_at is not None:
        new.first_at = facts.submitted_at  # Telesign's own submit time beats any callback's
    elif when is not None and (new.first_at is None or when < new.first_at):
        new.first_at = when
    if new.first_at is not None:
        new.hour = hour_of(new.first_at)
    if not new.channel and event.channel is not None:
        new.channel = event.channel.value
    if not new.country and facts.country:
        new.country = facts.country
    if facts.carrier and (not new.carrier or (_is_plmn(facts.carrier) and not _is_plmn(new.carrier))):
        new.carrier = facts.carrier  # Telesign's mcc/mnc beats the number's prefix
    if event.status.final:
        rank = final_rank(event)
        if (
            new.final_rank is None
            or rank > new.final_rank
            or (rank == new.final_rank and when is not None and new.final_at is not None and when > new.final_at)
        ):
            new.final_code = event.status.code
            new.final_outcome = event.status.outcome.value
            new.final_rank = rank
            new.final_at = when
    if new.spend is None and facts.spend is not None:
        new.spend, new.currency = facts.spend, facts.currency
    return new


ALL_CHANNELS = "*"  # rows that count every channel, so a query without a channel reads 1/6 of the rows
HOUR, DAY = 1, 24  # a row's span in hours: hourly rows, and daily rows so long ranges read few rows


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _start(hour_number: int) -> datetime:
    return _EPOCH + timedelta(hours=hour_number)


class Delta:
    """Counter changes per rollup row, and spend changes per row and currency.

    A row is (dim, channel, span, start, key): every contribution goes to the
    message's channel and to ALL_CHANNELS, each as an hourly and a daily row.
    """

    def __init__(self) -> None:
        self.counts: dict[tuple, list[int]] = defaultdict(lambda: [0] * len(COUNTERS))
        self.ttf: dict[tuple, dict[int, int]] = defaultdict(dict)
        self.spend: dict[tuple, Decimal] = defaultdict(Decimal)

    @staticmethod
    def _rows(dim: str, hour: int, channel: str, key: str) -> tuple[tuple, ...]:
        """Keys hold hours since the epoch, not datetimes: an aware datetime hashes ten times slower."""
        day = hour - hour % 24
        return ((dim, channel, HOUR, hour, key), (dim, channel, DAY, day, key),
                (dim, ALL_CHANNELS, HOUR, hour, key), (dim, ALL_CHANNELS, DAY, day, key))

    def add_message(self, state: MessageState, sign: int) -> None:
        if state.hour is None:
            return
        hour = int(state.hour.timestamp()) // 3600
        final = state.final_outcome is not None
        bucket = None
        if final and state.final_at is not None and state.first_at is not None:
            bucket = histogram.bucket_of((state.final_at - state.first_at).total_seconds())
        receipts = state.channel in READ_RECEIPT_CHANNELS
        outcome = state.final_outcome
        vector = [0] * len(COUNTERS)
        vector[_SENT] = sign
        if final:
            vector[_FINAL] = sign
            if outcome == "delivered":
                vector[_DELIVERED] = sign
            elif outcome == "read":
                vector[_READ] = sign
            elif outcome in FAILED:
                vector[_FAILED] = sign
            if receipts:
                vector[_RR_FINAL] = sign
                vector[_RR_READ] = sign if outcome == "read" else 0
        code_key = str(state.final_code) if final else ""
        for dim, key in (("channel", state.channel), ("country", state.country),
                         ("carrier", state.carrier), ("status_code", code_key)):
            for row in self._rows(dim, hour, state.channel, key):
                counts = self.counts[row]
                for i, v in enumerate(vector):
                    if v:
                        counts[i] += v
                if bucket is not None:
                    self.ttf[row][bucket] = self.ttf[row].get(bucket, 0) + sign
                if state.spend is not None and state.currency:
                    self.spend[row + (state.currency,)] += sign * state.spend
        if final and outcome in FAILED:
            # Failure codes per carrier and per country, for "worst carriers and their codes".
            for dim, key in (("carrier_code", state.carrier), ("country_code", state.country)):
                for row in self._rows(dim, hour, state.channel, f"{key}|{state.final_code}"):
                    self.counts[row][_FAILED] += sign

    def add_inbound(self, event: Event) -> None:
        when = event.occurred_at or event.received_at
        if when is None:
            return
        channel = event.channel.value if event.channel is not None else ""
        action = event.action.value if event.action is not None else ""
        for row in self._rows("action", int(when.timestamp()) // 3600, channel, action):
            self.counts[row][_INBOUND] += 1

    def rollup_rows(self) -> list[tuple]:
        """Rows to add, in primary-key order (so concurrent writers lock them in the same order)."""
        rows = []
        for row in sorted(self.counts):
            counts = self.counts[row]
            ttf = [0] * histogram.N
            for bucket, n in self.ttf.get(row, {}).items():
                ttf[bucket] = n
            if any(counts) or any(ttf):
                dim, channel, span, hour, key = row
                rows.append((dim, channel, span, _start(hour), key, *counts, ttf))
        return rows

    def spend_rows(self) -> list[tuple]:
        return [(dim, channel, span, _start(hour), key, currency, amount)
                for (dim, channel, span, hour, key, currency), amount in sorted(self.spend.items()) if amount]


_CLAIM = (
    "INSERT INTO insight_messages (reference_id) SELECT r FROM unnest(%s::text[]) AS r ORDER BY r "
    "ON CONFLICT DO NOTHING"
)
_LOCK = (
    f"SELECT {', '.join(_STATE_COLUMNS)} FROM insight_messages WHERE reference_id = ANY(%s) "
    "ORDER BY reference_id FOR UPDATE"
)
_STATE_TYPES = ("text", "timestamptz", "timestamptz", "text", "text", "text", "integer", "text", "smallint",
                "timestamptz", "text", "numeric")
_SAVE = (
    f"UPDATE insight_messages m SET {', '.join(f'{c} = u.{c}' for c in _STATE_COLUMNS[1:])} "
    f"FROM unnest({', '.join(f'%s::{t}[]' for t in _STATE_TYPES)}) AS u({', '.join(_STATE_COLUMNS)}) "
    "WHERE m.reference_id = u.reference_id"
)
_ROLLUP = (
    f"INSERT INTO insight_rollup AS r (dim, channel, span, hour, key, {', '.join(COUNTERS)}, ttf) "
    f"VALUES (%s, %s, %s, %s, %s, {', '.join(['%s'] * len(COUNTERS))}, %s::integer[]) "
    "ON CONFLICT (dim, channel, span, hour, key) DO UPDATE SET "
    + ", ".join(f"{c} = r.{c} + EXCLUDED.{c}" for c in COUNTERS)
    + ", ttf = ARRAY(SELECT a + b FROM unnest(r.ttf, EXCLUDED.ttf) WITH ORDINALITY AS t(a, b, i) ORDER BY i)"
)
_SPEND = (
    "INSERT INTO insight_spend AS s (dim, channel, span, hour, key, currency, amount) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s) "
    "ON CONFLICT (dim, channel, span, hour, key, currency) DO UPDATE SET amount = s.amount + EXCLUDED.amount"
)


def apply(cur: psycopg.Cursor, rows: Sequence[ArchiveRow]) -> Delta:
    """Fold newly archived rows into the rollups, in the caller's transaction. Returns what changed."""
    delta = Delta()
    by_ref: dict[str, list[Event]] = defaultdict(list)
    for row in rows:
        event = row.event
        kind = event.kind.value
        if kind == "inbound":
            delta.add_inbound(event)
        elif kind in MESSAGE_KINDS and event.reference_id:
            by_ref[event.reference_id].append(event)
    if by_ref:
        _apply_messages(cur, by_ref, delta)
    counts = delta.rollup_rows()
    if counts:
        cur.executemany(_ROLLUP, counts)
    spend = delta.spend_rows()
    if spend:
        cur.executemany(_SPEND, spend)
    return delta


def _apply_messages(cur: psycopg.Cursor, by_ref: dict[str, list[Event]], delta: Delta) -> None:
    refs = sorted(by_ref)
    cur.execute(_CLAIM, (refs,))
    cur.execute(_LOCK, (refs,))
    states = {r[0]: MessageState(**dict(zip(_STATE_COLUMNS, r))) for r in cur.fetchall()}
    changed = []
    for ref in refs:
        old = states[ref]
        new = old
        for event in by_ref[ref]:
            new = advance(new, event, facts_of(event))
        if new != old:
            delta.add_message(old, -1)
            delta.add_message(new, +1)
            changed.append(new)
    if changed:
        columns = [[getattr(s, c) for s in changed] for c in _STATE_COLUMNS]
        cur.execute(_SAVE, columns)

