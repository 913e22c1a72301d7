"""Stats benchmark: each grouped /v1/stats query over the rollups of 10 million archived callbacks.

Builds the rollups that N messages with two callbacks each (default 5,000,000
messages = 10,000,000 callbacks) spread over 30 days produce, with the real
rollup code (archive/rollups.py's Delta, the same contribution a worker adds
per message) and the real schema (or, with --fill sql, rows of the same shape
made by PostgreSQL, as many a day as the real code wrote), then times every group_by of
archive/stats.py (the query behind GET /v1/stats) over the last 24 hours, 7
days and 30 days. Baseline in the same run: the same figures grouped straight
from the per-message table (`insight_messages`, one row per message: what a
query without rollups would at least have to read).

The `events` table itself is not filled: the figures never read it, and 10
million raw bodies (~10 GB) do not fit this machine's disk budget; what a
query costs depends on the rollup rows, which are here in full.

    python bench/stats.py [--messages 5000000] [--days 30] [--runs 5] [--database-url URL]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from archive import stats  # noqa: E402
from archive.migrate import migrate  # noqa: E402
from archive.rollups import Delta, MessageState  # noqa: E402
from pipeline import histogram  # noqa: E402

CHANNELS = [("sms", 0.70), ("whatsapp", 0.12), ("rcs", 0.06), ("viber", 0.04), ("mms", 0.04), ("email", 0.04)]
# Final outcome mix: (code by channel family, outcome, share)
SMS_FINALS = [(200, "delivered", 0.90), (220, "failed", 0.03), (211, "failed", 0.03), (207, "failed", 0.02),
              (229, "blocked", 0.01), (231, "rejected", 0.01)]
MSG_FINALS = [(3000, "delivered", 0.60), (3005, "read", 0.30), (3032, "failed", 0.05), (3031, "failed", 0.03),
              (3033, "failed", 0.02)]
COUNTRIES = 40
CARRIERS_PER_COUNTRY = 3


def pick(rng: random.Random, table):
    x, acc = rng.random(), 0.0
    for row in table:
        acc += row[-1]
        if x < acc:
            return row
    return table[-1]


def messages(n: int, days: int, now: datetime, seed: int = 7):
    """Lists of message states, one list per day (oldest first), as the rollups hold them after both callbacks."""
    rng = random.Random(seed)
    # Whole UTC days ending with today up to now: a day's rollup rows all come from that day's messages.
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    start = today - timedelta(days=days - 1)
    countries = [f"C{c:02d}" for c in range(COUNTRIES)]
    per_day = n // days
    for day in range(days):
        states = []
        for j in range(per_day if day < days - 1 else n - per_day * (days - 1)):
            i = day * per_day + j
            channel = pick(rng, CHANNELS)[0]
            c = int(rng.paretovariate(1.2)) % COUNTRIES  # a few big countries, a long tail
            carrier = f"{200 + c:03d}-{rng.randrange(CARRIERS_PER_COUNTRY):02d}"
            length = 86400 if day < days - 1 else max(60.0, (now - today).total_seconds())
            first = start + timedelta(days=day, seconds=rng.random() * length)
            pending = rng.random() < 0.03
            code, outcome, _ = pick(rng, SMS_FINALS if channel in ("sms", "mms") else MSG_FINALS)
            ttf = rng.lognormvariate(2.0, 1.3)
            priced = channel == "sms"
            states.append(MessageState(
                reference_id=f"{i:032X}",
                hour=first.replace(minute=0, second=0, microsecond=0),
                first_at=first,
                channel=channel,
                country=countries[c],
                carrier=carrier,
                final_code=None if pending else code,
                final_outcome=None if pending else outcome,
                final_rank=None if pending else (3 if outcome == "read" else 2),
                final_at=None if pending else first + timedelta(seconds=ttf),
                currency="USD" if priced else None,
                spend=Decimal("0.0075") * rng.choice((1, 1, 1, 2)) if priced else None,
            ))
        yield states


def load(conn: psycopg.Connection, n: int, days: int, now: datetime) -> tuple[int, float]:
    """Messages day by day through the real rollup code (one Delta per day: days never share a row)."""
    t0 = time.perf_counter()
    rollup_rows = 0
    for day, states in enumerate(messages(n, days, now)):
        delta = Delta()
        for state in states:
            delta.add_message(state, +1)
        with conn.cursor().copy(
            "COPY insight_messages (generation, reference_id, hour, first_at, channel, country, carrier, final_code, "
            "final_outcome, final_rank, final_at, currency, spend) FROM STDIN"
        ) as copy:
            for state in states:
                copy.write_row((1, state.reference_id, state.hour, state.first_at, state.channel, state.country,
                                state.carrier, state.final_code, state.final_outcome, state.final_rank,
                                state.final_at, state.currency, state.spend))
        rows = delta.rollup_rows()
        rollup_rows += len(rows)
        with conn.cursor().copy(
            "COPY insight_rollup (dim, channel, span, hour, key, sent, final, delivered, read, failed, inbound, "
            "rr_final, rr_read, ttf, fail_codes, fail_counts) FROM STDIN"
        ) as copy:
            for row in rows:
                copy.write_row(row)
        with conn.cursor().copy(
            "COPY insight_spend (dim, channel, span, hour, key, currency, amount) FROM STDIN"
        ) as copy:
            for row in delta.spend_rows():
                copy.write_row(row)
        print(f"  day {day + 1}/{days}: {len(states):,} messages, {len(rows):,} rollup rows, "
              f"{time.perf_counter() - t0:.0f} s", flush=True)
    for table in ("insight_rollup", "insight_spend", "insight_messages"):
        conn.execute(f"VACUUM ANALYZE {table}")
    return rollup_rows, time.perf_counter() - t0


# --fill sql: the rollup rows that many messages produce, made by PostgreSQL itself (generate_series),
# because generating 5 million messages in Python and copying them in takes long on a loaded machine.
# The mix follows what archive/rollups.py writes for this file's traffic (`messages()`, 166,666 messages
# a day; counted with the real Delta): a day has 17,527 rows (34,512 in migration 0050's layout, which
# kept a row per failure code and a copy of each channel's row under '*'). Per hour and channel there is
# a row for every channel, and one for a country, a carrier and a status code with the probabilities
# below (the real shares: 3,650 of 5,760 country rows a day, 7,738 of 17,280 carrier rows, 911 of 1,584
# status code rows), then every row is spread to its daily row and to the all-channel rows (key '*' for
# dimension channel) as the real code does. A carrier or country row holds each of the 8 failure codes
# with the probability below (0.67 and 0.87 codes per hourly row in the real count).
DENSITY = {"country": 3650 / 5760, "carrier": 7738 / 17280, "status_code": 911 / 1584}
CODE_DENSITY = {"carrier": 0.67 / 8, "country": 0.87 / 8}
REAL_ROWS_PER_DAY = 17_527

_FILL = """
WITH hours AS (SELECT generate_series(%(start)s::timestamptz, %(end)s::timestamptz - interval '1 hour',
                                      interval '1 hour') AS hour),
     channels AS (SELECT unnest(%(channels)s::text[]) AS channel),
     keys AS (
       SELECT 'channel' AS dim, c.channel AS key, c.channel AS only FROM channels c
       UNION ALL SELECT 'country', 'C' || lpad(n::text, 2, '0'), NULL FROM generate_series(0, %(countries)s - 1) n
       UNION ALL SELECT 'carrier', (200 + n / 3)::text || '-0' || (n %% 3)::text, NULL
                 FROM generate_series(0, %(countries)s * 3 - 1) n
       UNION ALL SELECT 'status_code', code::text, NULL FROM unnest(%(codes)s::int[]) code
     ),
     -- random() in the select list, once per candidate row (in a WHERE clause it would be pushed down
     -- to `keys` and draw once per key).
     candidates AS MATERIALIZED (
       SELECT k.dim, c.channel, h.hour, k.key, k.only AS own, random() AS r, (random() * 20)::int + 1 AS sent
       FROM hours h CROSS JOIN channels c JOIN keys k ON k.only IS NULL OR k.only = c.channel
     ),
     hourly AS MATERIALIZED (
       SELECT dim, channel, hour, key, sent FROM candidates
       WHERE own IS NOT NULL
          OR r < CASE dim WHEN 'country' THEN %(country)s WHEN 'carrier' THEN %(carrier)s ELSE %(status_code)s END
     ),
     code_candidates AS MATERIALIZED (
       SELECT h.dim, h.channel, h.hour, h.key, f.code, random() AS r, (random() * 4)::int + 1 AS n
       FROM hourly h CROSS JOIN unnest(%(failures)s::int[]) AS f(code) WHERE h.dim IN ('carrier', 'country')
     ),
     codes AS (
       SELECT dim, channel, hour, key, code, n FROM code_candidates
       WHERE r < CASE dim WHEN 'carrier' THEN %(carrier_codes)s ELSE %(country_codes)s END
     ),
     spread AS (
       SELECT dim, channel AS ch, 1 AS span, hour AS start, key, sent FROM hourly
       UNION ALL SELECT dim, '*', 1, hour, CASE WHEN dim = 'channel' THEN '*' ELSE key END, sent FROM hourly
       UNION ALL SELECT dim, channel, 24, date_trunc('day', hour AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', key, sent
                 FROM hourly
       UNION ALL SELECT dim, '*', 24, date_trunc('day', hour AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
                        CASE WHEN dim = 'channel' THEN '*' ELSE key END, sent FROM hourly
     ),
     code_spread AS (
       SELECT dim, channel AS ch, 1 AS span, hour AS start, key, code, n FROM codes
       UNION ALL SELECT dim, '*', 1, hour, key, code, n FROM codes
       UNION ALL SELECT dim, channel, 24, date_trunc('day', hour AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', key, code, n
                 FROM codes
       UNION ALL SELECT dim, '*', 24, date_trunc('day', hour AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', key, code, n
                 FROM codes
     ),
     fails AS (
       SELECT dim, ch, span, start, key, array_agg(code ORDER BY code) AS codes, array_agg(n ORDER BY code) AS counts
       FROM (SELECT dim, ch, span, start, key, code, sum(n)::int AS n FROM code_spread GROUP BY 1, 2, 3, 4, 5, 6) x
       GROUP BY 1, 2, 3, 4, 5
     ),
     rows AS (SELECT dim, ch, span, start, key, sum(sent) AS sent FROM spread GROUP BY 1, 2, 3, 4, 5)
INSERT INTO insight_rollup (dim, channel, span, hour, key, sent, final, delivered, read, failed, inbound,
                            rr_final, rr_read, ttf, fail_codes, fail_counts)
SELECT r.dim, r.ch, r.span, r.start, r.key, r.sent, r.sent, r.sent * 9 / 10, 0, r.sent / 10, 0, 0, 0,
       (SELECT array_agg((random() * 5)::int) FROM generate_series(1, %(buckets)s)), f.codes, f.counts
FROM rows r LEFT JOIN fails f USING (dim, ch, span, start, key)
"""


def fill_sql(conn: psycopg.Connection, days: int, now: datetime, rows_per_day: int) -> tuple[int, float]:
    """Rollup rows in the real code's mix, about `rows_per_day` a day (see _FILL), made in SQL."""
    t0 = time.perf_counter()
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    scale = rows_per_day / REAL_ROWS_PER_DAY
    params = {"start": today - timedelta(days=days - 1), "end": now.replace(minute=0, second=0, microsecond=0),
              "channels": [c for c, _ in CHANNELS], "countries": COUNTRIES,
              "codes": sorted({c for c, _, _ in SMS_FINALS + MSG_FINALS}),
              "failures": sorted({c for c, o, _ in SMS_FINALS + MSG_FINALS if o in ("failed", "blocked", "rejected")}),
              "buckets": histogram.N,
              **{dim: min(1.0, p * scale) for dim, p in DENSITY.items()},
              **{f"{dim}_codes": p for dim, p in CODE_DENSITY.items()}}
    conn.execute(_FILL, params)
    conn.execute("INSERT INTO insight_spend (dim, channel, span, hour, key, currency, amount) "
                 "SELECT dim, channel, span, hour, key, 'USD', sent * 0.0075 FROM insight_rollup "
                 "WHERE channel = 'sms' OR channel = '*'")
    conn.execute("VACUUM ANALYZE insight_rollup")
    conn.execute("VACUUM ANALYZE insight_spend")
    rows = conn.execute("SELECT count(*) FROM insight_rollup").fetchone()[0]
    return rows, time.perf_counter() - t0


BASELINE = (
    "SELECT {key}, count(*), count(final_outcome), count(*) FILTER (WHERE final_outcome IN ('delivered', 'read')), "
    "percentile_disc(ARRAY[0.5, 0.9, 0.99]) WITHIN GROUP (ORDER BY final_at - first_at) "
    "FROM insight_messages WHERE hour >= %s AND hour < %s GROUP BY 1"
)


# The same carrier figures summed from hourly per-channel rows only: what the query would read without
# the daily and all-channel rows.
HOURLY_ONLY = (
    "SELECT key, sum(sent), sum(final), sum(delivered), sum(read), sum(failed), "
    + ", ".join(f"sum(ttf[{i + 1}])" for i in range(histogram.N))
    + " FROM insight_rollup WHERE dim = 'carrier' AND span = 1 AND channel <> '*' AND hour >= %s AND hour < %s "
    "GROUP BY key"
)


def timed(func, runs: int) -> float:
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        func()
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples)


def main() -> None:
    import signal

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally: stop the embedded PostgreSQL
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5_000_000, help="messages (two callbacks each)")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--database-url", default=None, help="an empty database; default: an embedded PostgreSQL")
    parser.add_argument("--fill", choices=("python", "sql"), default="python",
                        help="python: every message through the real rollup code (slow); sql: rows of the same "
                             "shape made by PostgreSQL, --rows-per-day of them")
    parser.add_argument("--rows-per-day", type=int, default=REAL_ROWS_PER_DAY,
                        help="--fill sql: rollup rows a day (the real code writes 17,527 for 166,666 messages a day, "
                             "34,512 in migration 0050's layout)")
    args = parser.parse_args()

    server = None
    home = None
    url = args.database_url
    if url is None:
        from archive.embedded import start

        home = Path(tempfile.mkdtemp(prefix="tspipe-bench-stats-"))
        home.chmod(0o755)
        server = start(home / "data")
        url = server.get_uri()
    now = datetime.now(timezone.utc)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            migrate(conn)
            if conn.execute("SELECT count(*) FROM insight_rollup").fetchone()[0]:
                sys.exit("bench/stats.py: the database already has rollups; give it an empty one")
            if args.fill == "python":
                rollup_rows, seconds = load(conn, args.messages, args.days, now)
                what = f"{args.messages:,} messages ({2 * args.messages:,} callbacks)"
            else:
                rollup_rows, seconds = fill_sql(conn, args.days, now, args.rows_per_day)
                what = f"rollup rows of {args.rows_per_day:,} a day (SQL fill, the real code's mix)"
            size = conn.execute("SELECT pg_total_relation_size('insight_rollup') + "
                                "pg_total_relation_size('insight_spend')").fetchone()[0]
            print(f"loaded {what} over {args.days} days in {seconds:.0f} s: {rollup_rows:,} rollup rows, "
                  f"{size / 1e6:.0f} MB")
            print(f"{'group_by':<12} {'range':>6} {'groups':>7} {'median ms':>10}  goal <= 100 ms")
            worst = 0.0
            for label, span in (("24h", timedelta(hours=24)), ("7d", timedelta(days=7)), ("30d", timedelta(days=args.days))):
                since, until = now - span, now
                for group_by in stats.GROUP_BY:
                    groups = len(stats.query(conn, group_by, since, until).groups)
                    ms = timed(lambda: stats.query(conn, group_by, since, until), args.runs)
                    worst = max(worst, ms)
                    print(f"{group_by:<12} {label:>6} {groups:>7} {ms:>10.1f}  {'ok' if ms <= 100 else 'MISSED'}")
            since = now - timedelta(days=args.days)
            if args.fill == "python":
                base = timed(lambda: conn.execute(BASELINE.format(key="carrier"), (since, now)).fetchall(), 1)
                roll = timed(lambda: stats.query(conn, "carrier", since, now), args.runs)
                print(f"baseline: carrier over {args.days} days from the per-message table {base:.0f} ms; "
                      f"from the rollups {roll:.1f} ms ({base / roll:.0f}x)")
            hourly = timed(lambda: conn.execute(HOURLY_ONLY, (since, now)).fetchall(), args.runs)
            roll = timed(lambda: stats.query(conn, "carrier", since, now), args.runs)
            print(f"baseline: carrier over {args.days} days from hourly rows only (no daily rows) {hourly:.0f} ms; "
                  f"as served {roll:.1f} ms ({hourly / roll:.1f}x)")
            print(f"slowest grouped query: {worst:.1f} ms ({'goal met' if worst <= 100 else 'goal MISSED'})")
    finally:
        if server is not None:
            server.cleanup()
            import shutil

            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
