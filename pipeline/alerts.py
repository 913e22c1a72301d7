"""Delivery-rate alerts: which channel, country or carrier is doing much worse than it usually does (pure).

Each group is compared with its own baseline, not with the others: a
country where 85% is normal must not alert all day, and a carrier that
usually delivers 99% and now delivers 40% must. The window is the last
`window_minutes`; the baseline is the same hours of the previous
`baseline_days` days (traffic and carrier behaviour follow the clock).
Both sides need `min_volume` final messages, so a handful of failures, or a
group with no history, never raises an alert. An alert's id is derived from
the group and the window it fired in: the evaluator runs every minute, and a
group that stays down raises one alert per window, which downstream
receivers and the dashboard deduplicate on that id.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

import msgspec

DIMENSIONS = ("channel", "country", "carrier")


class Rule(msgspec.Struct, frozen=True, kw_only=True):
    window_minutes: int = 60
    baseline_days: int = 7
    min_volume: int = 50  # final messages needed in the window, and in the baseline
    min_drop: float = 0.2  # absolute fall of the delivery rate (0.2 = 20 points) that raises an alert


class Counts(msgspec.Struct, frozen=True):
    final: int = 0
    delivered: int = 0  # delivered or read

    @property
    def rate(self) -> float | None:
        return self.delivered / self.final if self.final else None


class Alert(msgspec.Struct, frozen=True, kw_only=True):
    """An event of kind "alert": fanned out to destinations like any event (webhook-id = event_id)."""

    event_id: str
    kind: str = "alert"
    dimension: str  # channel, country or carrier
    key: str
    label: str
    window_start: datetime
    window_end: datetime
    final: int
    delivered: int
    delivery_rate: float
    baseline_final: int
    baseline_rate: float
    description: str
    occurred_at: datetime


Group = tuple[str, str]  # (dimension, key)


def alert_id(dimension: str, key: str, window_start: datetime) -> str:
    return hashlib.sha256(f"alert|{dimension}|{key}|{window_start.isoformat()}".encode()).hexdigest()[:32]


def evaluate(
    window: dict[Group, Counts],
    baseline: dict[Group, Counts],
    rule: Rule,
    window_start: datetime,
    window_end: datetime,
    labels: dict[Group, str] | None = None,
) -> list[Alert]:
    """Alerts for the groups whose window rate fell at least `min_drop` below their baseline rate."""
    alerts = []
    for group in sorted(window):
        now, usual = window[group], baseline.get(group)
        if usual is None or now.final < rule.min_volume or usual.final < rule.min_volume:
            continue
        rate, base = now.rate, usual.rate
        if rate is None or base is None or base - rate < rule.min_drop:
            continue
        dimension, key = group
        label = (labels or {}).get(group) or key
        alerts.append(
            Alert(
                event_id=alert_id(dimension, key, window_start),
                dimension=dimension,
                key=key,
                label=label,
                window_start=window_start,
                window_end=window_end,
                final=now.final,
                delivered=now.delivered,
                delivery_rate=round(rate, 4),
                baseline_final=usual.final,
                baseline_rate=round(base, 4),
                description=(
                    f"delivery rate of {dimension} {label} fell to {rate:.0%} "
                    f"({now.delivered}/{now.final}) from {base:.0%} over the previous {rule.baseline_days} days"
                ),
                occurred_at=window_end,
            )
        )
    return alerts


ALERT_ENCODER = msgspec.json.Encoder()
