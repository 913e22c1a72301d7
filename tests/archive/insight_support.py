"""Telesign-shaped callbacks for the insight tests, and the figures' definitions computed the slow way."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from pipeline import histogram
from pipeline.status_codes import READ_RECEIPT_CHANNELS, lookup

UTC = timezone.utc

# (mcc, mnc, a phone number of that network's country)
CARRIERS = {
    "310-004": ("310", "004", "12015550100"),  # Verizon, US
    "310-260": ("310", "260", "12015550200"),  # T-Mobile US
    "262-01": ("262", "01", "4915112345000"),  # Telekom, DE
    "234-15": ("234", "15", "447400123000"),  # Vodafone, GB
    "208-01": ("208", "01", "33612345000"),  # Orange, FR
    "310-410": ("310", "410", "12125550000"),  # AT&T, US
}


def stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def sms_report(ref: str, code: int, when: datetime, carrier: str | None = "310-004", *, phone: str | None = None,
               submitted: datetime | None = None, price: str | None = None, currency: str = "USD",
               parts: int = 1) -> bytes:
    """An SMS API delivery report (Telesign's "Receive SMS delivery reports" shape)."""
    body: dict = {"reference_id": ref, "sub_resource": "sms",
                  "status": {"code": code, "description": lookup(code).description, "updated_on": stamp(when)}}
    info: dict = {}
    if carrier is not None:
        mcc, mnc, number = CARRIERS[carrier]
        info.update(mcc=mcc, mnc=mnc)
        body["phone_number"] = phone or number[:-3] + ref[-3:].rjust(3, "0")
    elif phone:
        body["phone_number"] = phone
    if price is not None:
        info.update(price=price, currency=currency, message_parts_count=parts)
    if info:
        body["additional_info"] = info
    if submitted is not None:
        body["submit_timestamp"] = stamp(submitted)
    return json.dumps(body).encode()


def messaging_status(ref: str, code: int, when: datetime, channel: str, phone: str = "4915112345678") -> bytes:
    """A Messaging API status (WhatsApp etc.); 3005 is a read notification, which names no channel."""
    status = {"code": code, "description": lookup(code).description, "updated_on": stamp(when)}
    if code == 3005:
        return json.dumps({"reference_id": ref, "status": status}).encode()
    status["last_channel"] = channel
    return json.dumps({"reference_id": ref, "status": status, "phone_number": phone}).encode()


def expected_figures(events, group) -> dict:
    """Each figure by its README definition, from decoded events (any order, duplicates allowed).

    `group(state) -> key` picks the grouping. Returns key -> dict of figures.
    """
    seen = set()
    messages: dict[str, dict] = {}
    for event, facts in events:
        if event.event_id in seen or event.kind.value == "inbound" or not event.reference_id:
            continue
        seen.add(event.event_id)
        m = messages.setdefault(event.reference_id, {"first": None, "final": None, "channel": "", "carrier": "",
                                                       "country": "", "spend": None})
        when = event.occurred_at
        if facts.submitted_at is not None:
            m["first"] = facts.submitted_at
        elif m["first"] is None or when < m["first"]:
            m["first"] = when
        m["channel"] = m["channel"] or (event.channel.value if event.channel else "")
        m["country"] = m["country"] or (facts.country or "")
        m["carrier"] = m["carrier"] or (facts.carrier or "")
        if event.status.final:
            rank = 3 if event.status.outcome.value == "read" else 2
            best = m["final"]
            if best is None or rank > best[0] or (rank == best[0] and when > best[1]):
                m["final"] = (rank, when, event.status.outcome.value, event.status.code)
        if m["spend"] is None and facts.spend is not None:
            m["spend"] = (facts.currency, facts.spend)
    out: dict = defaultdict(lambda: {"sent": 0, "final": 0, "delivered": 0, "read": 0, "failed": 0, "ttf": [],
                                     "spend": defaultdict(Decimal), "rr_read": 0, "rr_final": 0})
    for m in messages.values():
        g = out[group(m)]
        g["sent"] += 1
        if m["spend"]:
            g["spend"][m["spend"][0]] += m["spend"][1]
        if m["final"] is None:
            continue
        _, when, outcome, _code = m["final"]
        g["final"] += 1
        g["delivered"] += outcome == "delivered"
        g["read"] += outcome == "read"
        g["failed"] += outcome in ("failed", "blocked", "rejected")
        g["ttf"].append((when - m["first"]).total_seconds())
        if m["channel"] in READ_RECEIPT_CHANNELS:
            g["rr_final"] += 1
            g["rr_read"] += outcome == "read"
    return out


def hour(when: datetime) -> datetime:
    return when.replace(minute=0, second=0, microsecond=0)


def exact_percentile(samples: list[float], q: float) -> float | None:
    if not samples:
        return None
    return sorted(samples)[max(1, math.ceil(q * len(samples))) - 1]


def same_bucket(estimate: float | None, exact: float | None) -> bool:
    if exact is None:
        return estimate is None
    return estimate == histogram.representative(histogram.bucket_of(exact))


def base_time() -> datetime:
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=6)
