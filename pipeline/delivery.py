"""Messaging delivery-status callbacks (seed 000) and SMS API delivery reports (seed 002).

`status.last_channel` names the channel; `channel_status[]` lists every
channel tried, in order, which becomes `attempts`.
"""

from __future__ import annotations

from pipeline.event import Attempt, Status
from pipeline.status_codes import lookup
from pipeline.timestamps import parse_timestamp
from pipeline.wire import WireCallback, WireStatus, text


def status_of(status: WireStatus, channel: str | None) -> Status:
    info = lookup(status.code, channel)
    return Status(
        code=status.code,
        description=text(status.description) or info.description,
        final=info.final,
        outcome=info.outcome,
        retryable=info.retryable,
    )


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
