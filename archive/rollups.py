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
insight_messages is kept for TSPIPE_ARCHIVE_DAYS, like the events, and
dropped by whole partitions (message_generations.py).
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
_JSON = msgspec.json.Encoder(decimal_format="string")


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

    Messages add to their hourly row of their own channel, (dim, channel, hour, key);
    `rollup_rows()` then spreads each such row over the four it counts in: hourly
    and daily, for its channel and for ALL_CHANNELS. Spreading once per row rather
    than once per message is what keeps this cheap: a batch of 500 callbacks
    touches a few dozen rows.
    """

    def __init__(self) -> None:
        # Keys hold hours since the epoch, not datetimes: an aware datetime hashes ten times slower.
        self.counts: dict[tuple, list[int]] = defaultdict(lambda: [0] * len(COUNTERS))
        self.ttf: dict[tuple, dict[int, int]] = defaultdict(dict)
        # Failures by final status code, on the carrier's and the country's own rows.
        self.fails: dict[tuple, dict[int, int]] = defaultdict(dict)
        self.spend: dict[tuple, Decimal] = defaultdict(Decimal)

    def add_message(self, state: MessageState, sign: int) -> None:
        if state.hour is None:
            return
        hour = int(state.hour.timestamp()) // 3600
        channel = state.channel
        final = state.final_outcome is not None
        outcome = state.final_outcome
        vector = [0] * len(COUNTERS)
        vector[_SENT] = sign
        bucket = None
        if final:
            vector[_FINAL] = sign
            if outcome == "delivered":
                vector[_DELIVERED] = sign
            elif outcome == "read":
                vector[_READ] = sign
            elif outcome in FAILED:
                vector[_FAILED] = sign
            if channel in READ_RECEIPT_CHANNELS:
                vector[_RR_FINAL] = sign
                vector[_RR_READ] = sign if outcome == "read" else 0
            if state.final_at is not None and state.first_at is not None:
                bucket = histogram.bucket_of((state.final_at - state.first_at).total_seconds())
        priced = state.spend is not None and state.currency
        for dim, key in (("channel", channel), ("country", state.country),
                         ("carrier", state.carrier), ("status_code", str(state.final_code) if final else "")):
            row = (dim, channel, hour, key)
            counts = self.counts[row]
            for i, v in enumerate(vector):
                counts[i] += v
            if bucket is not None:
                ttf = self.ttf[row]
                ttf[bucket] = ttf.get(bucket, 0) + sign
            if priced:
                self.spend[row + (state.currency,)] += sign * state.spend
        if final and outcome in FAILED:
            # Failure codes per carrier and per country, for "worst carriers and their codes".
            code = state.final_code
            for row in (("carrier", channel, hour, state.carrier), ("country", channel, hour, state.country)):
                fails = self.fails[row]
                fails[code] = fails.get(code, 0) + sign

    def add_inbound(self, event: Event) -> None:
        when = event.occurred_at or event.received_at
        if when is None:
            return
        channel = event.channel.value if event.channel is not None else ""
        action = event.action.value if event.action is not None else ""
        self.counts[("action", channel, int(when.timestamp()) // 3600, action)][_INBOUND] += 1

    @staticmethod
    def _spread(dim: str, channel: str, hour: int, key: str) -> tuple[tuple, ...]:
        day = hour - hour % 24
        # Dimension channel: the all-channel rows add every channel into one key, ALL_CHANNELS (a
        # copy of each channel's row under it would only repeat the channel's own rows).
        every = ALL_CHANNELS if dim == "channel" else key
        return ((dim, channel, HOUR, hour, key), (dim, channel, DAY, day, key),
                (dim, ALL_CHANNELS, HOUR, hour, every), (dim, ALL_CHANNELS, DAY, day, every))

    def rollup_rows(self) -> list[tuple]:
        """Rows to add, in primary-key order (so concurrent writers lock them in the same order).

        The histogram goes as an array literal (psycopg adapts a Python list element by element),
        or null when the row counts no time to final: rows stay narrow, and reading them cheap.
        """
        counts: dict[tuple, list[int]] = defaultdict(lambda: [0] * len(COUNTERS))
        ttfs: dict[tuple, list[int]] = defaultdict(lambda: [0] * histogram.N)
        fails: dict[tuple, dict[int, int]] = defaultdict(dict)
        for source, vector in self.counts.items():
            buckets = self.ttf.get(source)
            codes = self.fails.get(source)
            for row in self._spread(*source):
                total = counts[row]
                for i, v in enumerate(vector):
                    total[i] += v
                if buckets:
                    ttf = ttfs[row]
                    for bucket, n in buckets.items():
                        ttf[bucket] += n
                if codes:
                    merged = fails[row]
                    for code, n in codes.items():
                        merged[code] = merged.get(code, 0) + n
        rows = []
        for row in sorted(counts):
            vector, ttf = counts[row], ttfs.get(row)
            codes = {c: n for c, n in fails[row].items() if n} if row in fails else None
            if any(vector) or (ttf is not None and any(ttf)) or codes:
                dim, channel, span, hour, key = row
                literal = "{" + ",".join(map(str, ttf)) + "}" if ttf is not None and any(ttf) else None
                fail_codes = fail_counts = None
                if codes:
                    ordered = sorted(codes)
                    fail_codes = "{" + ",".join(map(str, ordered)) + "}"
                    fail_counts = "{" + ",".join(str(codes[c]) for c in ordered) + "}"
                rows.append((dim, channel, span, _start(hour), key, *vector, literal, fail_codes, fail_counts))
        return rows

    def spend_rows(self) -> list[tuple]:
        spend: dict[tuple, Decimal] = defaultdict(Decimal)
        for (dim, channel, hour, key, currency), amount in self.spend.items():
            for row in self._spread(dim, channel, hour, key):
                spend[row + (currency,)] += amount
        return [(dim, channel, span, _start(hour), key, currency, amount)
                for (dim, channel, span, hour, key, currency), amount in sorted(spend.items()) if amount]


# A message's row is in one generation of insight_messages (archive/message_generations.py): found by
# reference id in whichever holds it, made in the current one when none does.
_CLAIM = (
    "INSERT INTO insight_messages (generation, reference_id) "
    "SELECT (SELECT max(generation) FROM insight_message_generations), r FROM unnest(%s::text[]) AS r ORDER BY r "
    "ON CONFLICT DO NOTHING RETURNING reference_id"
)
# A join from the batch's reference ids (index probes into each generation), not `reference_id = ANY(...)`:
# on a young table without statistics the planner scanned every row against the whole array instead.
_LOCK = (
    f"SELECT {', '.join('m.' + c for c in _STATE_COLUMNS)} FROM unnest(%s::text[]) AS r(ref) "
    "JOIN insight_messages m ON m.reference_id = r.ref ORDER BY m.reference_id FOR UPDATE OF m"
)
_STATE_TYPES = ("text", "timestamptz", "timestamptz", "text", "text", "text", "integer", "text", "smallint",
                "timestamptz", "text", "numeric")
# Rows travel as one JSON document (msgspec encodes it in C; psycopg adapts list parameters in Python).
_SAVE = (
    f"UPDATE insight_messages m SET {', '.join(f'{c} = u.{c}' for c in _STATE_COLUMNS[1:])} "
    f"FROM jsonb_to_recordset(%s::jsonb) AS u({', '.join(f'{c} {t}' for c, t in zip(_STATE_COLUMNS, _STATE_TYPES))}) "
    "WHERE m.reference_id = u.reference_id"
)
_ROLLUP_TYPES = ("text", "text", "smallint", "timestamptz", "text") + ("bigint",) * len(COUNTERS) + ("text",) * 3
_ROLLUP_COLUMNS = ("dim", "channel", "span", "hour", "key") + COUNTERS + ("ttf", "fail_codes", "fail_counts")
# The failure codes of the stored row and of the batch, added code by code, zeros dropped, in code order.
_MERGED_FAILS = (
    "SELECT c, sum(n)::integer AS n FROM (SELECT * FROM unnest(r.fail_codes, r.fail_counts) "
    "UNION ALL SELECT * FROM unnest(EXCLUDED.fail_codes, EXCLUDED.fail_counts)) AS f(c, n) "
    "GROUP BY c HAVING sum(n) <> 0 ORDER BY c"
)
# One statement per batch: the rows arrive as one JSON document (arrays as array literals).
_ROLLUP = (
    f"INSERT INTO insight_rollup AS r ({', '.join(_ROLLUP_COLUMNS)}) "
    f"SELECT {', '.join(_ROLLUP_COLUMNS[:-3])}, ttf::integer[], fail_codes::integer[], fail_counts::integer[] "
    f"FROM jsonb_to_recordset(%s::jsonb) AS u({', '.join(f'{c} {t}' for c, t in zip(_ROLLUP_COLUMNS, _ROLLUP_TYPES))}) "
    "ON CONFLICT (dim, channel, span, hour, key) DO UPDATE SET "
    + ", ".join(f"{c} = r.{c} + EXCLUDED.{c}" for c in COUNTERS)
    # Most rows of a batch change no histogram and no failure code: null, and kept as is.
    + ", ttf = CASE WHEN EXCLUDED.ttf IS NULL THEN r.ttf WHEN r.ttf IS NULL THEN EXCLUDED.ttf ELSE "
    "ARRAY(SELECT a + b FROM unnest(r.ttf, EXCLUDED.ttf) WITH ORDINALITY AS t(a, b, i) ORDER BY i) END"
    ", fail_codes = CASE WHEN EXCLUDED.fail_codes IS NULL THEN r.fail_codes WHEN r.fail_codes IS NULL "
    f"THEN EXCLUDED.fail_codes ELSE ARRAY(SELECT c FROM ({_MERGED_FAILS}) AS m) END"
    ", fail_counts = CASE WHEN EXCLUDED.fail_codes IS NULL THEN r.fail_counts WHEN r.fail_codes IS NULL "
    f"THEN EXCLUDED.fail_counts ELSE ARRAY(SELECT n FROM ({_MERGED_FAILS}) AS m) END"
)
_SPEND = (
    "INSERT INTO insight_spend AS s (dim, channel, span, hour, key, currency, amount) "
    "SELECT * FROM unnest(%s::text[], %s::text[], %s::smallint[], %s::timestamptz[], %s::text[], %s::text[], "
    "%s::numeric[]) ON CONFLICT (dim, channel, span, hour, key, currency) DO UPDATE SET amount = s.amount + EXCLUDED.amount"
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
        cur.execute(_ROLLUP, (_JSON.encode([dict(zip(_ROLLUP_COLUMNS, row)) for row in counts]).decode(),))
    spend = delta.spend_rows()
    if spend:
        cur.execute(_SPEND, [list(column) for column in zip(*spend)])
    return delta


def _lock(cur: psycopg.Cursor, refs: list[str]) -> dict[str, MessageState]:
    cur.execute(_LOCK, (refs,))
    return {r[0]: MessageState(**dict(zip(_STATE_COLUMNS, r))) for r in cur.fetchall()}


def _apply_messages(cur: psycopg.Cursor, by_ref: dict[str, list[Event]], delta: Delta) -> None:
    """Lock the batch's messages (in reference-id order), making the rows of new ones, then move them."""
    refs = sorted(by_ref)
    states = _lock(cur, refs)
    missing = [ref for ref in refs if ref not in states]
    if missing:
        cur.execute(_CLAIM, (missing,))
        claimed = {ref for (ref,) in cur.fetchall()}
        states.update((ref, MessageState(reference_id=ref)) for ref in claimed)
        if len(claimed) < len(missing):
            # Another writer made these rows meanwhile (its insert held ours until it committed): lock them.
            states.update(_lock(cur, [ref for ref in missing if ref not in claimed]))
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
        cur.execute(_SAVE, (_JSON.encode(changed).decode(),))

