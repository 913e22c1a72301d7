"""A plug-in that declares its own queue, and appends each event id it gets to the file in QUEUED_PLUGIN_OUT."""

import os

from celery import shared_task


@shared_task(name="tests.queued_plugin", queue="tests.plugin.queue", ignore_result=True)
def record(event: dict) -> None:
    with open(os.environ["QUEUED_PLUGIN_OUT"], "a") as out:
        out.write(event["event_id"] + "\n")
