"""A plug-in that always fails, to show failed plug-in calls land in the dead-letter store."""

from celery import shared_task


@shared_task(name="tests.failing_plugin", tspipe_filter={"outcomes": ["failed"]}, tspipe_batch=True,
             autoretry_for=(RuntimeError,), max_retries=1, default_retry_delay=0, ignore_result=True)
def explode(events: list[dict]) -> None:
    raise RuntimeError(f"cannot take {len(events)} events")
