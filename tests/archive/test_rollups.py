"""Hourly rollups written with the archive, and the figures read from them, against a real PostgreSQL.

The figures are checked against their definitions computed the slow way from
the same callbacks (tests/archive/insight_support.py), with callbacks out of
order, repeated, and split into batches in many ways.
"""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal

import pytest

from archive import stats
from archive.writer import Writer
from pipeline.insight import facts_of
from tests.archive.insight_support import (
    base_time,
    exact_percentile,
    expected_figures,
    hour,
    messaging_status,
    same_bucket,
    sms_report,
)
from tests.archive.support import connect, row_of


def traffic(rng: random.Random, messages: int = 120) -> list[bytes]:
    """SMS reports (pending then final, some priced and split) and WhatsApp statuses with read receipts."""
    t0 = base_time()
    bodies = []
    for n in range(messages):
        ref = f"{n:032X}"
        sent = t0 + timedelta(minutes=rng.randrange(0, 180), seconds=rng.random())
        if n % 4 == 3:
            bodies.append(messaging_status(ref, 3001, sent, "whatsapp"))
            bodies.append(messaging_status(ref, 3000, sent + timedelta(seconds=rng.uniform(1, 30)), "whatsapp"))
            if rng.random() < 0.6:
                bodies.append(messaging_status(ref, 3005, sent + timedelta(seconds=rng.uniform(40, 900)), "whatsapp"))
            continue
        carrier = rng.choice(["310-004", "310-260", "262-01", "234-15", None])
        final = rng.choice([200, 200, 200, 220, 211, 229])
        price = rng.choice([None, "0.0075", "0.0450"])
        currency = "EUR" if carrier == "262-01" else "USD"
        parts = rng.choice([1, 1, 2, 3])
        submitted = sent if rng.random() < 0.5 else None
        phone = "4915112345678" if carrier is None else None
        bodies.append(sms_report(ref, 203, sent + timedelta(seconds=0.5), carrier, phone=phone, submitted=submitted))
        if rng.random() < 0.9:
            bodies.append(sms_report(ref, final, sent + timedelta(seconds=rng.lognormvariate(2, 1.5)), carrier,
                                     phone=phone, submitted=submitted, price=price, currency=currency, parts=parts))
    # Inbound: keyword actions count as inbound volume, never as sent messages.
    bodies.append(b'{"status":{"code":1500,"description":"Delivered to customer","updated_on":"%s"},'
                  b'"reference_id":"0123456789ABCDEF0123456789ABCDEF","sub_resource":"mo_sms",'
                  b'"user_response":{"phone_number":"11234567890","mo_message":"STOP"}}'
                  % (t0 + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S.%fZ").encode())
    return bodies


GROUPINGS = {
    "channel": lambda m: m["channel"],
    "carrier": lambda m: m["carrier"],
    "country": lambda m: m["country"],
    "day": lambda m: hour(m["first"]).strftime("%Y-%m-%d"),
    "hour": lambda m: hour(m["first"]).strftime("%Y-%m-%dT%H:00:00Z"),
    "status_code": lambda m: str(m["final"][3]) if m["final"] else "",
}


def check_figures(conn, rows, since, until):
    events = [(r.event, facts_of(r.event)) for r in rows]
    for group_by, group in GROUPINGS.items():
        expected = expected_figures(events, group)
        got = {g.key or "": g for g in stats.query(conn, group_by, since, until).groups}
        assert set(got) == set(expected), group_by
        for key, want in expected.items():
            g = got[key]
            assert (g.sent, g.final, g.delivered, g.read, g.failed) == (
                want["sent"], want["final"], want["delivered"], want["read"], want["failed"]), (group_by, key)
            rate = (want["delivered"] + want["read"]) / want["final"] if want["final"] else None
            assert g.delivery_rate == (round(rate, 6) if rate is not None else None)
            assert g.read_rate == (round(want["rr_read"] / want["rr_final"], 6) if want["rr_final"] else None)
            for q, name in ((0.5, "p50"), (0.9, "p90"), (0.99, "p99")):
                assert same_bucket(getattr(g.time_to_final_s, name), exact_percentile(want["ttf"], q)), (group_by, key, q)
            assert {c: Decimal(v) for c, v in g.spend.items()} == {c: v for c, v in want["spend"].items() if v}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_figures_match_their_definitions_whatever_the_order_and_batching(database_url, seed):
    rng = random.Random(seed)
    conn = connect(database_url)
    bodies = traffic(rng)
    rng.shuffle(bodies)
    bodies += rng.sample(bodies, 20)  # Telesign retries: the same bodies again
    rows = [row_of(b, channel="sms" if b"sub_resource" in b else None) for b in bodies]
    writer = Writer()
    start = 0
    while start < len(rows):
        size = rng.choice([1, 7, 50, 200])
        writer.archive(conn, rows[start:start + size])
        start += size
    since, until = base_time() - timedelta(hours=1), base_time() + timedelta(hours=6)
    check_figures(conn, rows, since, until)
    # A redelivered batch changes nothing.
    before = conn.execute("SELECT sum(sent), sum(final), sum(failed) FROM insight_rollup").fetchone()
    writer.archive(conn, rows[:100])
    assert conn.execute("SELECT sum(sent), sum(final), sum(failed) FROM insight_rollup").fetchone() == before


def test_spend_is_price_times_parts_per_currency_once_per_message(database_url):
    conn = connect(database_url)
    t0 = base_time()
    rows = [row_of(b, channel="sms") for b in (
        sms_report("A" * 32, 203, t0, "310-004", price="0.0075", parts=3),
        sms_report("A" * 32, 200, t0 + timedelta(seconds=5), "310-004", price="0.0075", parts=3),
        sms_report("B" * 32, 200, t0, "262-01", price="0.05", currency="EUR"),
    )]
    Writer().archive(conn, rows)
    result = stats.query(conn, "carrier", t0, t0 + timedelta(hours=1))
    spend = {g.key: g.spend for g in result.groups}
    assert spend == {"310-004": {"USD": "0.0225"}, "262-01": {"EUR": "0.05"}}
    labels = {g.key: g.label for g in result.groups}
    assert labels["310-004"] == "Verizon (310-004)"


def test_failures_name_their_codes_per_carrier(database_url):
    conn = connect(database_url)
    t0 = base_time()
    bodies = [sms_report(f"{n:032X}", 220 if n % 2 else 211, t0 + timedelta(seconds=n), "310-260") for n in range(5)]
    bodies.append(sms_report("F" * 32, 200, t0, "310-260"))
    Writer().archive(conn, [row_of(b, channel="sms") for b in bodies])
    (group,) = stats.query(conn, "carrier", t0, t0 + timedelta(hours=1)).groups
    assert (group.sent, group.final, group.failed, group.delivered) == (6, 6, 5, 1)
    assert [(f.code, f.count) for f in group.failures] == [(211, 3), (220, 2)]
    assert group.failures[1].description == "Gateway/network cannot route message"
    codes = {g.key: (g.sent, g.label) for g in stats.query(conn, "status_code", t0, t0 + timedelta(hours=1)).groups}
    assert codes == {"211": (3, "Permanent phone error"), "220": (2, "Gateway/network cannot route message"),
                     "200": (1, "Delivered to handset")}


def test_inbound_by_action_and_channel_filter(database_url):
    conn = connect(database_url)
    t0 = base_time()
    mo = (b'{"status":{"code":1500,"description":"Delivered to customer","updated_on":"%s"},"reference_id":"%s",'
          b'"sub_resource":"mo_sms","user_response":{"phone_number":"11234567890","mo_message":"%s"}}')
    bodies = [mo % (t0.strftime("%Y-%m-%dT%H:%M:%SZ").encode(), f"{n:032X}".encode(), text)
              for n, text in enumerate([b"STOP", b"stop", b"HELP", b"hello"])]
    bodies.append(messaging_status("E" * 32, 3000, t0, "whatsapp"))
    Writer().archive(conn, [row_of(b) for b in bodies])
    actions = {g.key: g.inbound for g in stats.query(conn, "action", t0, t0 + timedelta(hours=1)).groups}
    assert actions == {"stop": 2, "help": 1, "generic": 1}
    assert [g.key for g in stats.query(conn, "channel", t0, t0 + timedelta(hours=1), channel="whatsapp").groups] == ["whatsapp"]
    assert stats.query(conn, "channel", t0, t0 + timedelta(hours=1), channel="sms").groups == []


@pytest.mark.parametrize(("group_by", "channel", "since", "until", "message"), [
    (None, None, None, None, "group_by is required"),
    ("planet", None, None, None, "group_by: 'planet' is not one of"),
    ("channel", "fax", None, None, "channel: 'fax'"),
    ("channel", None, "yesterday", None, "since: 'yesterday' is not an ISO 8601 time"),
])
def test_bad_parameters_say_what_is_wrong(group_by, channel, since, until, message):
    with pytest.raises(stats.StatsError, match=message):
        stats.check(group_by, channel)
        stats.time_range(since, until)


def test_odd_but_well_formed_ranges_are_answered(database_url):
    conn = connect(database_url)
    for since, until in (("2026-11-25T12:00:00Z", "2026-11-25T11:00:00Z"), ("0001-01-01T00:00:00Z", None),
                         ("999999999w", "9999-12-31T23:59:59Z")):
        start, end = stats.time_range(since, until)
        assert stats.query(conn, "day", start, end).groups == []


@pytest.mark.parametrize(("since_h", "until_h"), [(5, 70), (0, 48), (23, 25), (30, 31), (1, 72)])
def test_ranges_over_days_read_daily_and_hourly_rows_without_gaps_or_overlaps(database_url, since_h, until_h):
    """Whole days come from daily rows, the partial days at the ends from hourly rows: same totals as hour by hour."""
    conn = connect(database_url)
    day0 = base_time().replace(hour=0) - timedelta(days=4)
    bodies = [sms_report(f"{h:016X}{i:016X}", 200 if i % 3 else 220, day0 + timedelta(hours=h, minutes=10 + i), "310-260")
              for h in range(72) for i in range(2)]
    Writer().archive(conn, [row_of(b, channel="sms") for b in bodies])
    since, until = day0 + timedelta(hours=since_h, minutes=20), day0 + timedelta(hours=until_h, minutes=5)
    hours = {g.key: g for g in stats.query(conn, "hour", since, until).groups}
    (carrier,) = stats.query(conn, "carrier", since, until).groups
    days = stats.query(conn, "day", since, until).groups
    expected_hours = min(until_h, 71) - since_h + 1  # the data covers hours 0..71
    assert len(hours) == expected_hours
    for figure in ("sent", "final", "delivered", "failed"):
        total = sum(getattr(g, figure) for g in hours.values())
        assert getattr(carrier, figure) == total == sum(getattr(g, figure) for g in days)
    assert carrier.sent == 2 * expected_hours


def test_two_writers_claiming_one_new_message_make_one_row(database_url):
    """B's claim waits for A's uncommitted row of the same message, then locks and moves that row."""
    import threading
    import time as clock

    from archive import rollups

    a, b = connect(database_url), connect(database_url)
    t0 = base_time()
    ref = "C" * 32
    first = row_of(sms_report(ref, 203, t0, "310-004"), channel="sms")
    final = row_of(sms_report(ref, 200, t0 + timedelta(seconds=3), "310-004"), channel="sms")
    with a.transaction(), a.cursor() as cur:
        rollups.apply(cur, Writer().write(cur, [first]))
        other = threading.Thread(target=Writer().archive, args=(b, [final]))
        other.start()
        clock.sleep(1.0)
        assert other.is_alive()  # waiting for A's row of the message
    other.join(30)
    assert not other.is_alive()
    assert a.execute("SELECT count(*) FROM insight_messages").fetchone()[0] == 1
    (group,) = stats.query(a, "carrier", t0, t0 + timedelta(hours=1)).groups
    assert (group.sent, group.final, group.delivered) == (1, 1, 1)
