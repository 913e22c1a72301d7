"""Example tspipe plug-in: append every opt-out (an inbound STOP) to a CSV file.

An ordinary Celery task. tspipe reads `tspipe_filter` and `tspipe_batch`
from the task options and only sends matching events, as plain dicts.
The file is TSPIPE_OPTOUT_CSV (default optouts.csv in the working folder).
"""

from __future__ import annotations

import csv
import os

from celery import shared_task


@shared_task(
    name="tspipe_optout_csv.record_optout",
    tspipe_filter={"kinds": ["inbound"], "actions": ["stop"]},
    tspipe_batch=False,
    autoretry_for=(OSError,),
    max_retries=3,
    retry_backoff=True,
    ignore_result=True,
)
def record_optout(event: dict) -> None:
    path = os.environ.get("TSPIPE_OPTOUT_CSV", "optouts.csv")
    with open(path, "a", newline="") as handle:
        csv.writer(handle).writerow([event["event_id"], event["channel"], event["phone_number"] or event["email"],
                                     event["keyword"], event["occurred_at"]])
