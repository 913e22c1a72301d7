"""Messaging delivery-status callbacks (seed 000) and SMS API delivery reports (seed 002).

`status.last_channel` names the channel; `channel_status[]` lists every
channel tried, in order, which becomes `attempts`.
"""

from __future__ import annotations

from pipeline.event import Attempt, Status
from pipeline.status_codes import lookup
from pipeline.timestamps import parse_timestamp
from pipeline.wire import WireCallback, WireStatus, text


# Status is frozen, so equal inputs can share one object. Codes, channels and
# descriptions repeat across almost every body; the cap keeps a stream of odd
# descriptions from growing the cache without bound. Only str/None
# descriptions are cached: 1, 1.0 and True are equal keys but map differently.
_STATUS_CACHE: dict[tuple, Status] = {}
_STATUS_CACHE_MAX = 4096


def status_of(status: WireStatus, channel: str | None) -> Status:
    description = status.description
    cacheable = description is None or type(description) is str
    if cacheable:
        key = (status.code, channel, description)
        cached = _STATUS_CACHE.get(key)
        if cached is not None:
            return cached
    info = lookup(status.code, channel)
    built = Status(
        code=status.code,
        description=text(description) or info.description,
        final=info.final,
        outcome=info.outcome,
        retryable=info.retryable,
    )
    if cacheable:
        if len(_STATUS_CACHE) >= _STATUS_CACHE_MAX:
            _STATUS_CACHE.clear()
        _STATUS_CACHE[key] = built
    return built


def attempts_of(wire: WireCallback) -> list[Attempt]:
    attempts: list[Attempt] = []
    for entry in wire.channel_status or ():
        for channel, attempt in entry.items():
            code = attempt.code
            info = lookup(code, channel) if code is not None else None
            attempts.append(
                Attempt(
                    channel=channel,
                    code=code,
                    description=text(attempt.description),
                    reference_id=text(attempt.reference_id),
                    final=info.final if info else False,
                    outcome=info.outcome if info else Status(code=0).outcome,
                    occurred_at=parse_timestamp(attempt.updated_on),
                )
            )
    return attempts
