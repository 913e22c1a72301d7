"""Downstream delivery seam: the batch task hands every newly applied event here.

Only new (non-duplicate) events arrive, in batch order, so a destination sees
each event at most once per applied batch. The delivery engineer replaces this
no-op with HTTP destinations and plug-in tasks; keeping the seam now lets the
batch task's shape stay fixed.
"""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.event import Event


def fan_out(events: Sequence[Event]) -> None:
    """Deliver `events` downstream. Currently a no-op: no destinations exist yet."""
    return None
