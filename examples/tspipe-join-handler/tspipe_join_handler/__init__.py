"""Example tspipe plug-in: a handler for one keyword of the sender's own, JOIN.

tspipe detects JOIN only when the keyword map has it (TSPIPE_KEYWORDS, e.g.
`{"keywords": {"JOIN": "generic"}}`); such an event keeps `action: "generic"`
and carries `keyword: "join"`, which this task's filter asks for. The filter
match is exact after case-folding: "Join!" is a JOIN, "join now" is not.

Each JOIN becomes one JSON line in TSPIPE_JOIN_FILE (default joins.jsonl in
the working folder): who joined, on which channel, when, and the event id,
which a real handler would use to ignore a redelivered event (plug-in calls
are at-least-once).
"""

from __future__ import annotations

import json
import os

from celery import shared_task


@shared_task(
    name="tspipe_join_handler.handle_join",
    tspipe_filter={"kinds": ["inbound"], "keywords": ["join"]},
    tspipe_batch=False,
    autoretry_for=(OSError,),
    max_retries=3,
    retry_backoff=True,
    ignore_result=True,
)
def handle_join(event: dict) -> None:
    row = {
        "event_id": event["event_id"],
        "address": event["phone_number"] or event["email"],
        "channel": event["channel"],
        "keyword": event["keyword"],
        "text": event["text"],
        "occurred_at": event["occurred_at"],
    }
    with open(os.environ.get("TSPIPE_JOIN_FILE", "joins.jsonl"), "a", encoding="utf-8") as handle:
        handle.write(json.dumps(row) + "\n")
