"""Migrations 0051 and 0052 carry rollups and message rows written in the 0050 layout over unchanged."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import psycopg

from archive import stats
from archive.migrate import available, migrate
from pipeline import histogram

H = datetime(2026, 11, 20, 10, tzinfo=timezone.utc)


def _ttf(**buckets: int) -> str:
    counts = [0] * histogram.N
    for index, n in buckets.items():
        counts[int(index[1:])] = n
    return "{" + ",".join(map(str, counts)) + "}"


def test_0050_rows_fold_into_the_new_layout(database_url):
    conn = psycopg.connect(database_url, autocommit=True)
    conn.execute("CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL, "
                 "applied_at timestamptz NOT NULL DEFAULT now())")
    for version, name, sql in available():
        if version <= 50:
            conn.execute(sql)
            conn.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (version, name))
    rollup = ("INSERT INTO insight_rollup (dim, channel, span, hour, key, sent, final, delivered, failed, ttf) "
              "VALUES (%s, %s, 1, %s, %s, %s, %s, %s, %s, %s::integer[])")
    for channel in ("sms", "*"):
        conn.execute(rollup, ("carrier", channel, H, "310-004", 5, 5, 2, 3, _ttf(b10=2, b20=3)))
        conn.execute(rollup, ("carrier", channel, H, "odd|name", 1, 1, 0, 1, _ttf(b12=1)))
        conn.execute(rollup, ("country", channel, H, "US", 6, 6, 2, 4, _ttf(b10=2, b20=3, b12=1)))
        for key, failed in (("310-004|220", 2), ("310-004|211", 1), ("odd|name|229", 1), ("310-260|220", 0)):
            conn.execute(rollup, ("carrier_code", channel, H, key, 0, 0, 0, failed, None))
        for key, failed in (("US|220", 2), ("US|211", 1), ("US|229", 1)):
            conn.execute(rollup, ("country_code", channel, H, key, 0, 0, 0, failed, None))
    # Dimension channel: each channel's row, and (0050) a copy of it under '*'.
    for channel in ("sms", "*"):
        conn.execute(rollup, ("channel", channel, H, "sms", 6, 6, 2, 4, _ttf(b10=2, b20=3, b12=1)))
    for channel in ("whatsapp", "*"):
        conn.execute(rollup, ("channel", channel, H, "whatsapp", 3, 2, 2, 0, _ttf(b10=1, b30=1)))
    spend = "INSERT INTO insight_spend (dim, channel, span, hour, key, currency, amount) VALUES (%s, %s, 1, %s, %s, %s, %s)"
    for channel, key, amount in (("sms", "sms", "0.0450"), ("*", "sms", "0.0450"), ("whatsapp", "whatsapp", "0.01"),
                                 ("*", "whatsapp", "0.01")):
        conn.execute(spend, ("channel", channel, H, key, "USD", amount))
    conn.execute("INSERT INTO insight_messages (reference_id, hour, channel, final_outcome) VALUES ('R1', %s, 'sms', 'failed')", (H,))
    until = H + timedelta(hours=1)

    assert migrate(conn) == ["0051_insight_compact.sql", "0052_insight_message_generations.sql"]

    assert conn.execute("SELECT count(*) FROM insight_rollup WHERE dim LIKE '%\\_code'").fetchone()[0] == 0
    carriers = {g.key: g for g in stats.query(conn, "carrier", H, until).groups}
    assert [(f.code, f.count) for f in carriers["310-004"].failures] == [(220, 2), (211, 1)]
    assert [(f.code, f.count) for f in carriers["odd|name"].failures] == [(229, 1)]
    assert "310-260" not in carriers  # only a zero failure count: nothing to show
    (country,) = stats.query(conn, "country", H, until).groups
    assert [(f.code, f.count) for f in country.failures] == [(220, 2), (211, 1), (229, 1)]
    channels = {g.key: (g.sent, g.final, g.delivered, g.failed, g.spend) for g in stats.query(conn, "channel", H, until).groups}
    assert channels == {"sms": (6, 6, 2, 4, {"USD": "0.045"}), "whatsapp": (3, 2, 2, 0, {"USD": "0.01"})}
    assert [g.key for g in stats.query(conn, "channel", H, until, channel="whatsapp").groups] == ["whatsapp"]
    # Dimension channel's all-channel rows: one per period, every channel summed, histograms included.
    merged = [0] * histogram.N
    merged[10], merged[12], merged[20], merged[30] = 3, 1, 3, 1
    for group_by in ("hour", "day"):
        (total,) = stats.query(conn, group_by, H, until).groups
        assert (total.sent, total.final, total.delivered, total.spend) == (9, 8, 4, {"USD": "0.055"})
        assert total.time_to_final_s == stats.TimeToFinal(*histogram.percentiles(merged, (0.5, 0.9, 0.99)))
    assert conn.execute("SELECT count(*) FROM insight_rollup WHERE dim = 'channel' AND channel = '*'").fetchone()[0] == 1
    assert conn.execute("SELECT generation, reference_id, final_outcome FROM insight_messages").fetchall() == [(1, "R1", "failed")]
