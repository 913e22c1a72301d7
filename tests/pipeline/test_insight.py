"""Country, carrier, spend and timing of events; the time-to-final histogram; alert decisions."""

from __future__ import annotations

import json
import math
import random
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pipeline
from pipeline import histogram
from pipeline.alerts import Counts, Rule, alert_id, evaluate
from pipeline.insight import carrier_name, facts_of, number_facts
from tests.conftest import fixture_bodies

UTC = timezone.utc

# Telesign's SMS delivery report example ("Receive SMS delivery reports"), with a phone number added.
SMS_REPORT = {
    "reference_id": "B56259E45884010488343BAA15FB0002",
    "status": {"code": 200, "description": "Delivered to handset", "updated_on": "2016-10-21T14:05:36.181346Z"},
    "submit_timestamp": "2016-10-21T14:05:30.000000Z",
    "phone_number": "15558675310",
    "additional_info": {
        "mcc": "310", "mnc": "004", "price": "0.01", "currency": "USD", "message_parts_count": 2,
        "message_parts_reference_ids": "35E63E88CB000E049196AD1CFCFFB89C,35E63E88CC7C050491613443467F3F12",
    },
    "external_id": "CustomExternalID7349",
}


def event(body: dict) -> pipeline.Event:
    return pipeline.decode(json.dumps(body).encode(), channel_hint="sms")


def test_facts_of_telesign_sms_report():
    facts = facts_of(event(SMS_REPORT))
    assert facts.country == "US"
    assert facts.carrier == "310-004"
    assert facts.price == Decimal("0.01") and facts.currency == "USD" and facts.parts == 2
    assert facts.spend == Decimal("0.02")
    assert facts.submitted_at == datetime(2016, 10, 21, 14, 5, 30, tzinfo=UTC)
    assert carrier_name("310-004") == "Verizon (310-004)"


def test_carrier_from_phonenumbers_when_no_mcc():
    body = {**SMS_REPORT, "phone_number": "4915112345678"}
    del body["additional_info"]
    facts = facts_of(event(body))
    assert (facts.country, facts.carrier) == ("DE", "T-Mobile")
    assert facts.spend is None and facts.parts == 1


def test_country_from_mcc_without_phone_number():
    body = {**SMS_REPORT}
    del body["phone_number"]
    assert facts_of(event(body)).country == "US"


def test_fixtures_have_facts_without_failing():
    for name, raw in fixture_bodies().items():
        facts = facts_of(pipeline.decode(raw))
        assert facts.spend is None, name
        if name.startswith("mo_sms"):
            assert facts.country is not None


@pytest.mark.parametrize("info", [
    {"mcc": "31O", "mnc": "004"},  # a letter in the mcc
    {"mcc": "310", "mnc": True},
    {"price": "abc", "currency": "USD"},
    {"price": "-1", "currency": "USD"},
    {"price": "NaN", "currency": "USD"},
    {"price": "0.01", "currency": "US DOLLARS"},
    {"message_parts_count": "many"},
    "not an object",
])
def test_odd_additional_info_gives_unknowns_never_errors(info):
    facts = facts_of(event({**SMS_REPORT, "additional_info": info}))
    assert facts.carrier in (None, "310-004") or facts.carrier.startswith("310")
    assert facts.spend is None or facts.spend == Decimal("0.02")
    assert 1 <= facts.parts <= 255


@given(st.text(max_size=30))
@settings(max_examples=300, deadline=None)
def test_number_facts_never_raise(number):
    country, carrier = number_facts(number)
    assert country is None or (len(country) == 2 and country.isupper())
    assert carrier is None or isinstance(carrier, str)


@given(
    price=st.decimals(min_value=0, max_value=100, places=4, allow_nan=False, allow_infinity=False),
    parts=st.integers(min_value=1, max_value=20),
    currency=st.sampled_from(["USD", "EUR", "gbp"]),
)
@settings(max_examples=200, deadline=None)
def test_spend_is_price_times_parts(price, parts, currency):
    info = {"price": str(price), "currency": currency, "message_parts_count": parts}
    facts = facts_of(event({**SMS_REPORT, "additional_info": info}))
    assert facts.spend == price * parts
    assert facts.currency == currency.upper()


# --- histogram ---


@given(st.lists(st.floats(min_value=0, max_value=14 * 86400, allow_nan=False), min_size=1, max_size=300),
       st.sampled_from([0.5, 0.9, 0.99]))
@settings(max_examples=200, deadline=None)
def test_percentile_of_merged_rows_is_within_a_bucket_of_the_exact_one(samples, q):
    half = len(samples) // 2
    rows = []
    for part in (samples[:half], samples[half:]):
        counts = [0] * histogram.N
        for s in part:
            counts[histogram.bucket_of(s)] += 1
        rows.append(counts)
    estimate = histogram.percentile(histogram.merge(rows), q)
    exact = sorted(samples)[max(1, math.ceil(q * len(samples))) - 1]
    lower, upper = histogram.bounds(histogram.bucket_of(exact))
    assert lower <= exact <= upper or exact <= histogram.LOW
    if histogram.LOW < exact <= histogram.TOP:
        assert exact / histogram.RATIO ** 0.5 - 1e-9 <= estimate <= exact * histogram.RATIO ** 0.5 + 1e-9


def test_percentile_of_nothing_is_none():
    assert histogram.percentile([0] * histogram.N, 0.5) is None


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_every_value_has_a_bucket(value):
    assert 0 <= histogram.bucket_of(value) < histogram.N


# --- alerts ---

START = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
END = START + timedelta(hours=1)


def test_alert_fires_only_for_the_group_that_fell():
    window = {
        ("carrier", "310-004"): Counts(final=200, delivered=0),
        ("carrier", "310-260"): Counts(final=200, delivered=198),
        ("country", "US"): Counts(final=400, delivered=198),
    }
    baseline = {
        ("carrier", "310-004"): Counts(final=1400, delivered=1390),
        ("carrier", "310-260"): Counts(final=1400, delivered=1385),
        ("country", "US"): Counts(final=2800, delivered=2775),
    }
    alerts = evaluate(window, baseline, Rule(min_drop=0.6), START, END, labels={("carrier", "310-004"): "Verizon"})
    assert [(a.dimension, a.key) for a in alerts] == [("carrier", "310-004")]
    alert = alerts[0]
    assert alert.label == "Verizon" and alert.delivery_rate == 0 and alert.baseline_rate > 0.99
    assert alert.event_id == alert_id("carrier", "310-004", START)
    assert "Verizon" in alert.description


@pytest.mark.parametrize(("now", "usual"), [
    (Counts(final=10, delivered=0), Counts(final=1000, delivered=990)),  # too few in the window
    (Counts(final=100, delivered=0), Counts(final=10, delivered=10)),  # too little history
    (Counts(final=100, delivered=0), None),  # a new group
    (Counts(final=100, delivered=85), Counts(final=1000, delivered=900)),  # its usual rate
])
def test_no_alert(now, usual):
    baseline = {("country", "FR"): usual} if usual else {}
    assert evaluate({("country", "FR"): now}, baseline, Rule(), START, END) == []


@given(st.integers(0, 500), st.integers(0, 500), st.integers(0, 500), st.integers(0, 500))
def test_alert_iff_volume_and_drop(final, delivered, base_final, base_delivered):
    now = Counts(final=final, delivered=min(delivered, final))
    usual = Counts(final=base_final, delivered=min(base_delivered, base_final))
    rule = Rule(min_volume=50, min_drop=0.2)
    fired = bool(evaluate({("channel", "sms"): now}, {("channel", "sms"): usual}, rule, START, END))
    expected = final >= 50 and base_final >= 50 and usual.rate - now.rate >= 0.2
    assert fired == expected


def test_percentiles_in_one_pass_agree_with_percentile():
    rng = random.Random(5)
    for _ in range(200):
        counts = [rng.choice([0, 0, 0, 1, 2, 7, 40]) for _ in range(histogram.N)]
        qs = (0.01, 0.5, 0.9, 0.99, 1.0)
        assert histogram.percentiles(counts, qs) == [histogram.percentile(counts, q) for q in qs]
    assert histogram.percentiles([0] * histogram.N, (0.5, 0.9)) == [None, None]
