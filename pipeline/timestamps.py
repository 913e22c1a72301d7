"""Telesign's timestamps, in every format its docs show, to aware UTC datetimes.

Formats seen: `2021-11-26T15:01:39.000000Z`, `2020-05-04 22:07:01:226` (a
colon before the milliseconds), `2020-05-04 22:05:00.325` and the HTTP-date
`Thu, 23 Jun 2022 19:03:44 GMT`. No zone means UTC. A value that matches
none of them gives None: a callback is never rejected for its clock.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

_COLON_MILLIS = re.compile(r"^(\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}):(\d{1,6})$")


_UTC = timezone.utc
_fromisoformat = datetime.fromisoformat
_MONTHS = {m: f"{i:02d}" for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}
_UTC_NAMES = frozenset({"GMT", "UTC", "UT", "Z", "+0000", "-0000"})


def parse_timestamp(value: object) -> datetime | None:
    """Parse one `updated_on`; runs once or more per callback, so the common forms come first.

    Real timestamps carry microseconds and almost never repeat, so there is
    no cache: each format has a path that costs about one `fromisoformat`.
    """
    if type(value) is not str:
        if not isinstance(value, str):
            return None
        value = str(value)
    if not value:
        return None
    if value[0] > "9":  # a letter: the HTTP-date form, which fromisoformat would refuse slowly
        return _http_date(value.strip())
    if value[-1] == "Z" or "+" in value[-6:] or "-" in value[-6:]:
        try:
            parsed = _fromisoformat(value)
        except ValueError:
            return _parse_other(value.strip())
    else:
        # No zone, which means UTC: say so in the text, because parsing it
        # costs a fifth of datetime.replace(tzinfo=...), which is slow on 3.11.
        try:
            return _fromisoformat(value + "+00:00")
        except ValueError:
            return _parse_other(value.strip())
    return parsed if parsed.tzinfo is _UTC else _utc(parsed)


def _utc(parsed: datetime) -> datetime:
    """An aware UTC datetime: no zone means UTC (e.g. a date only, "2020-05-04"), others are converted."""
    return parsed.replace(tzinfo=_UTC) if parsed.tzinfo is None else parsed.astimezone(_UTC)


def _parse_other(value: str) -> datetime | None:
    match = _COLON_MILLIS.match(value)
    if match:
        try:
            return datetime.fromisoformat(f"{match.group(1)}.{match.group(2).ljust(3, '0')}+00:00")
        except ValueError:
            return None
    if value[:1].isalpha():
        return _http_date(value)
    try:
        return _utc(datetime.fromisoformat(value))
    except ValueError:
        return None


def _http_date(value: str) -> datetime | None:
    """`Thu, 23 Jun 2022 19:03:44 GMT`: rewritten as ISO for fromisoformat (5x faster than email.utils, the fallback)."""
    parts = value.split()
    if len(parts) == 6 and parts[5] in _UTC_NAMES and parts[2] in _MONTHS:
        try:
            return _fromisoformat(f"{parts[3]}-{_MONTHS[parts[2]]}-{parts[1].zfill(2)}T{parts[4]}+00:00")
        except ValueError:
            pass  # not this exact form: the general parser decides
    try:
        return _utc(parsedate_to_datetime(value))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
