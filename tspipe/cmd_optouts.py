"""`tspipe optouts import FILE.csv` and `tspipe optouts export`: the suppression list in and out as CSV.

The CSV has the columns address, channel, keyword, time and, optionally,
action (stop or start). Without an action column the keyword decides, through
the keyword map (TSPIPE_KEYWORDS), as it would for a callback. A header row
naming the columns may come first, in any order. A bad row is reported with
its line number and skipped; the others are imported. Rows apply oldest
first and only when newer than what the list holds, like any STOP or START,
so importing the same file twice changes nothing the second time.
"""

from __future__ import annotations

import csv
import sys

import click

from pipeline.keywords import SCOPE_CHANNELS
from pipeline.timestamps import parse_timestamp
from tspipe.context import settings_or_exit

COLUMNS = ("address", "channel", "keyword", "time", "action")
REQUIRED = COLUMNS[:4]
SHOW_BAD = 20
_ACTIONS = {"stop": "stop", "start": "start", "opt-out": "stop", "opt-in": "start"}


class BadRow(ValueError):
    """One line of the file that cannot be imported; str(err) says why."""


@click.group("optouts")
def optouts() -> None:
    """The opt-out (suppression) list: import it from another system, export it."""


def _client(settings):
    from store.connection import connect

    return connect(settings.redis_url)


def _when(raw: str) -> float:
    value = raw.strip()
    if not value:
        raise BadRow("time is empty")
    if value.replace(".", "", 1).isdigit():
        return float(value)  # unix seconds
    try:
        parsed = parse_timestamp(value)
    except (ValueError, OverflowError):
        parsed = None
    if parsed is None:
        raise BadRow(f"time {value!r} is not a date (use ISO 8601, e.g. 2024-05-01T10:00:00Z, or unix seconds)")
    return parsed.timestamp()


def parse_row(cells: dict[str, str], keywords, detected: dict | None = None):
    """One CSV row as an ImportRow; raises BadRow naming the problem.

    `detected` caches the keyword map's answer per (keyword, channel): a list
    holds a handful of distinct keywords over many rows.
    """
    from store.suppression import ImportRow, normalize_address

    raw_address = cells.get("address", "")
    address = normalize_address(raw_address)
    if not address or len(address) > 320:
        raise BadRow(f"address {raw_address.strip()!r} is neither a phone number nor an e-mail")
    channel = cells.get("channel", "").strip().lower()
    if channel and channel not in SCOPE_CHANNELS:
        raise BadRow(f"channel {channel!r} is not one of {', '.join(SCOPE_CHANNELS)}")
    keyword = cells.get("keyword", "").strip()
    given = cells.get("action", "").strip().lower()
    if given:
        action = _ACTIONS.get(given)
        if action is None:
            raise BadRow(f"action {given!r} is not stop or start")
    else:
        cache = detected if detected is not None else {}
        action = cache.get((keyword, channel))
        if action is None:
            action = cache[(keyword, channel)] = keywords.detect(keyword, channel or None)[0].value
        if action not in ("stop", "start"):
            raise BadRow(f"keyword {keyword!r} is neither a stop nor a start keyword in the keyword map; "
                         "add an action column (stop or start)")
    return ImportRow(address=address, action=action, channel=channel, keyword=keyword.casefold(),
                     ts=_when(cells.get("time", "")))


def read_rows(handle, keywords) -> tuple[list, list[tuple[int, str]]]:
    """(rows, [(line number, why)...]) from a CSV file."""
    reader = csv.reader(handle)
    rows, bad = [], []
    columns: tuple[str, ...] | None = None
    detected: dict = {}
    for cells in reader:
        line = reader.line_num
        if not cells or not any(c.strip() for c in cells):
            continue
        if columns is None:
            names = tuple(c.strip().lower() for c in cells)
            if "address" in names:
                missing = [c for c in REQUIRED if c not in names]
                if missing:
                    raise click.ClickException(f"line {line}: the header lacks {', '.join(missing)}")
                columns = names
                continue
            columns = COLUMNS
        if len(cells) > len(columns):
            bad.append((line, f"{len(cells)} columns; expected at most {len(columns)} ({', '.join(columns)})"))
            continue
        try:
            rows.append(parse_row(dict(zip(columns, cells)), keywords, detected))
        except BadRow as exc:
            bad.append((line, str(exc)))
    return rows, bad


@optouts.command("import")
@click.argument("file", type=click.File("r", encoding="utf-8-sig"))
def import_cmd(file) -> None:
    """Import opt-outs and opt-ins from a CSV: address, channel, keyword, time[, action]."""
    from config.keywords import keyword_map
    from store.suppression import import_rows

    settings = settings_or_exit("optouts import", need_redis=True)
    try:
        rows, bad = read_rows(file, keyword_map(settings.keywords))
    except UnicodeDecodeError as exc:
        raise click.ClickException(f"{file.name} is not UTF-8 text (byte {exc.start})") from None
    except csv.Error as exc:
        raise click.ClickException(f"{file.name}: {exc}") from None
    for line, why in bad[:SHOW_BAD]:
        click.echo(f"tspipe optouts import: {file.name}: line {line}: {why}", err=True)
    if len(bad) > SHOW_BAD:
        click.echo(f"tspipe optouts import: {file.name}: ... and {len(bad) - SHOW_BAD} more bad rows", err=True)
    client = _client(settings)
    try:
        result = import_rows(client, rows)
    finally:
        client.close()
    click.echo(
        f"{file.name}: {result.rows} rows imported, {len(bad)} bad; {result.changed} addresses changed "
        f"({result.opted_out} opted out, {result.opted_in} opted back in); "
        f"{result.rows - result.written} rows not newer than the list"
    )
    if bad:
        sys.exit(1)


@optouts.command("export")
@click.option("--output", "-o", type=click.File("w", encoding="utf-8"), default="-",
              help="Where to write the CSV (default: standard output).")
def export_cmd(output) -> None:
    """Write every opted-out address as CSV (address, channel, keyword, time, action), in the order they were recorded."""
    from store.suppression import export

    settings = settings_or_exit("optouts export", need_redis=True)
    client = _client(settings)
    writer = csv.writer(output, lineterminator="\n")
    writer.writerow(COLUMNS)
    try:
        for entry in export(client):
            writer.writerow([entry.address, entry.channel or "", entry.keyword or "", entry.updated_at or "", "stop"])
    finally:
        client.close()
