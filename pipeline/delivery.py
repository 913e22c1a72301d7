"""Messaging delivery-status callbacks (seed 000) and SMS API delivery reports (seed 002).

`status.last_channel` names the channel; `channel_status[]` lists every
channel tried, in order, which becomes `attempts`.
"""

from __future__ import annotations

from pipeline.event import Attempt, Outcome, Status
from pipeline.status_codes import lookup
from pipeline.timestamps import parse_timestamp
from pipeline.wire import WireAttempt, WireStatus

# Status is frozen, so equal inputs can share one object. Codes, channels and
# descriptions repeat across almost every body; the cap keeps a stream of odd
# descriptions from growing the cache without bound.
_STATUS_CACHE: dict[tuple[int, str | None, str | None], Status] = {}
_STATUS_CACHE_MAX = 4096
_UNKNOWN = Outcome.UNKNOWN


def status_of(status: WireStatus, channel: str | None) -> Status:
    key = (status.code, channel, status.description)
    cached = _STATUS_CACHE.get(key)
    if cached is not None:
        return cached
    info = lookup(status.code, channel)
    built = Status(
        code=status.code,
        description=status.description or info.description,
        final=info.final,
        outcome=info.outcome,
        retryable=info.retryable,
    )
    if len(_STATUS_CACHE) >= _STATUS_CACHE_MAX:
        _STATUS_CACHE.clear()
    _STATUS_CACHE[key] = built
    return built


def attempts_of(channel_status: list[dict[str, WireAttempt]]) -> list[Attempt]:
    attempts: list[Attempt] = []
    for entry in channel_status:
        for channel, attempt in entry.items():
            code = attempt.code
            if code is None:
                final, outcome = False, _UNKNOWN
            else:
                info = lookup(code, channel)
                final, outcome = info.final, info.outcome
            attempts.append(
                Attempt(
                    channel,
                    code,
                    attempt.description or None,
                    attempt.reference_id or None,
                    final,
                    outcome,
                    parse_timestamp(attempt.updated_on),
                )
            )
    return attempts
