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


# Parsed values by their text. Datetimes are immutable, and one sender's
# callbacks in a burst share a handful of distinct `updated_on` strings, so a
# small cache skips re-parsing; it is cleared when full rather than grown.
_CACHE: dict[str, datetime | None] = {}
_CACHE_MAX = 1024


def parse_timestamp(value: object) -> datetime | None:
    if type(value) is str:
        try:
            return _CACHE[value]
        except KeyError:
            pass
        parsed = _parse(value)
        if len(_CACHE) >= _CACHE_MAX:
            _CACHE.clear()
        _CACHE[value] = parsed
        return parsed
    if not isinstance(value, str):
        return None
    return _parse(value)  # a str subclass: not cached, parsed as before


def _parse(value: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = _parse_other(value.strip())
        if parsed is None:
            return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def _parse_other(value: str) -> datetime | None:
    match = _COLON_MILLIS.match(value)
    if match:
        try:
            return datetime.fromisoformat(f"{match.group(1)}.{match.group(2).ljust(3, '0')}")
        except ValueError:
            return None
    if value[:1].isalpha():
        try:
            return parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None
