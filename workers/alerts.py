"""Beat's delivery-rate alerts: evaluate the rollups, raise each alert once, fan it out like any event.

The decision is pipeline/alerts.py's (each channel, country and carrier
against its own baseline); the figures come from the archive's hourly
rollups, so alerts need DATABASE_URL and are off without it. The window is
the last TSPIPE_ALERT_WINDOW_MINUTES, as the whole hours it overlaps; the
baseline is the same hours on each of the previous TSPIPE_ALERT_BASELINE_DAYS
days. A raised alert is published once per window (store/alerts.py), shown on
the dashboard, counted in /metrics (tspipe_alerts_total) and handed to every
destination and plug-in that asks for kind "alert".
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import psycopg
import structlog
from celery import shared_task

from archive import stats
from archive.rollups import hour_of
from config import Settings, get_settings
from pipeline.alerts import ALERT_ENCODER, Alert, Counts, Rule, evaluate
from pipeline.insight import carrier_name
from store.alerts import AlertStore

log = structlog.get_logger("tspipe.alerts")

ALERTS_TASK = "tspipe.alerts"

_conn: psycopg.Connection | None = None


def rule_of(settings: Settings) -> Rule:
    return Rule(window_minutes=settings.alert_window_minutes, baseline_days=settings.alert_baseline_days,
                min_volume=settings.alert_min_volume, min_drop=settings.alert_min_drop)


def window_of(now: datetime, minutes: int) -> tuple[datetime, datetime]:
    """The window slot `now` is in: aligned to multiples of its length, so each slot has stable alert ids."""
    length = timedelta(minutes=minutes)
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    start = epoch + ((now - epoch) // length) * length
    return start, start + length


def evaluate_at(conn: psycopg.Connection, rule: Rule, now: datetime) -> list[Alert]:
    """The alerts for the last `window_minutes` before `now`, by the rollups on `conn`."""
    first = hour_of(now - timedelta(minutes=rule.window_minutes))
    hours = [first + timedelta(hours=n) for n in range(int((hour_of(now) - first).total_seconds() // 3600) + 1)]
    baseline_hours = [h - timedelta(days=d) for h in hours for d in range(1, rule.baseline_days + 1)]
    window = {g: Counts(*c) for g, c in stats.alert_counts(conn, hours).items()}
    baseline = {g: Counts(*c) for g, c in stats.alert_counts(conn, baseline_hours).items()}
    labels = {g: carrier_name(g[1]) or g[1] for g in window if g[0] == "carrier"}
    start, end = window_of(now, rule.window_minutes)
    return evaluate(window, baseline, rule, start, end, labels)


def publish(store: AlertStore, alerts: list[Alert], window_minutes: int) -> list[Alert]:
    """Raise each alert not raised yet in its window, and fan those out; returns them."""
    from workers import fanout

    raised = []
    for alert in alerts:
        if store.raise_alert(alert.event_id, alert.dimension, ALERT_ENCODER.encode(alert), window_minutes * 60 * 2):
            log.warning("delivery rate alert", dimension=alert.dimension, key=alert.key, label=alert.label,
                        rate=alert.delivery_rate, baseline=alert.baseline_rate, final=alert.final)
            raised.append(alert)
    fanout.fan_out_alerts(raised)
    return raised


def _connection(url: str) -> psycopg.Connection:
    global _conn
    if _conn is None or _conn.closed:
        _conn = psycopg.connect(url, autocommit=True, connect_timeout=5, application_name="tspipe-alerts")
    return _conn


@shared_task(name=ALERTS_TASK, ignore_result=True)
def check_alerts() -> int:
    settings = get_settings()
    if not settings.database_url:
        return 0
    from workers.tasks import get_store

    rule = rule_of(settings)
    try:
        alerts = evaluate_at(_connection(settings.database_url), rule, datetime.now(timezone.utc))
    except psycopg.Error as exc:
        log.warning("alerts: the archive cannot answer; next run retries", error=type(exc).__name__)
        return 0
    return len(publish(AlertStore(get_store().client), alerts, rule.window_minutes))
