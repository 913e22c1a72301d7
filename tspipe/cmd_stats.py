"""`tspipe stats --by carrier --since 24h`: the delivery figures as a table in the terminal (or CSV).

The same query as GET /v1/stats (archive/stats.py), straight against the
archive's PostgreSQL (DATABASE_URL), so it works while the web process is down.
"""

from __future__ import annotations

import sys

import click

from tspipe.context import settings_or_exit


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _secs(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 60:
        return f"{value:.1f}s"
    if value < 3600:
        return f"{value / 60:.1f}m"
    return f"{value / 3600:.1f}h"


def table(result) -> str:
    """A fixed-width table: one line per group, a header, numbers right-aligned."""
    header = ["key", "sent", "final", "delivered", "read", "failed", "rate", "p50", "p90", "p99", "spend", "top failure"]
    lines = []
    for g in result.groups:
        ttf = g.time_to_final_s
        top = f"{g.failures[0].code} {g.failures[0].description} ({g.failures[0].count})" if g.failures else ""
        spend = " ".join(f"{amount} {currency}" for currency, amount in sorted(g.spend.items()))
        key = g.label or g.key or "(unknown)"
        if g.inbound is not None:
            header[1] = "inbound"
        lines.append([key, str(g.inbound if g.inbound is not None else g.sent), str(g.final), str(g.delivered),
                      str(g.read), str(g.failed), _pct(g.delivery_rate), _secs(ttf.p50), _secs(ttf.p90),
                      _secs(ttf.p99), spend, top])
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]
    out = []
    for row in [header, *lines]:
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:10], widths[1:10])]
        cells += [row[10].ljust(widths[10]), row[11]]
        out.append("  ".join(cells).rstrip())
    return "\n".join(out)


@click.command("stats")
@click.option("--by", "group_by", default="channel", show_default=True,
              help="channel, country, carrier, status_code, day, hour or action (inbound by keyword action).")
@click.option("--since", default="24h", show_default=True, help="ISO 8601 time, or an age: 30m, 24h, 7d.")
@click.option("--until", default=None, help="ISO 8601 time, or an age (default: now).")
@click.option("--channel", default=None, help="Only this channel (sms, mms, rcs, viber, whatsapp, email).")
@click.option("--csv", "as_csv", is_flag=True, help="CSV instead of a table (the same as GET /v1/stats?format=csv).")
def stats_command(group_by: str, since: str, until: str | None, channel: str | None, as_csv: bool) -> None:
    """Delivery figures from the archive: volume, delivery rate, time to final, spend, failures."""
    settings = settings_or_exit("stats")
    from archive import stats

    try:
        stats.check(group_by, channel)
        start, end = stats.time_range(since, until)
    except stats.StatsError as exc:
        click.echo(f"tspipe stats: {exc}", err=True)
        sys.exit(2)
    if not settings.database_url:
        click.echo("tspipe stats: DATABASE_URL is not set: point it at the archive's PostgreSQL", err=True)
        sys.exit(2)
    import psycopg

    try:
        with psycopg.connect(settings.database_url, autocommit=True, connect_timeout=5) as conn:
            result = stats.query(conn, group_by, start, end, channel)
    except psycopg.Error as exc:
        click.echo(f"tspipe stats: the archive cannot answer: {str(exc).splitlines()[0] if str(exc) else exc!r}", err=True)
        sys.exit(1)
    if as_csv:
        click.echo(stats.to_csv(result), nl=False)
        return
    if not result.groups:
        click.echo(f"no messages between {start:%Y-%m-%d %H:%M} and {end:%Y-%m-%d %H:%M} UTC")
        return
    click.echo(table(result))
