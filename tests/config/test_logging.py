"""Log output never shows a full phone number, an e-mail or an API key."""

import io
import json
import logging

import pytest
import structlog

from config import load_settings
from config.logging import configure_logging, mask_processor, mask_text
from pipeline import decode
from tests.conftest import fixture_bodies

PHONE = "11234567890"
KEY = "EXAMPLE----TE8sTgg45yusumoN6BYsBVkh+yRJ5czgsnCehZaOYldPJdmFh6NeX8kunZ2zU1YWaUw/0wV6xfw=="


def test_logs_mask_phones_emails_and_keys():
    stream = io.StringIO()
    configure_logging(load_settings({"TSPIPE_LOG_FORMAT": "json", "TSPIPE_LOG_LEVEL": "debug"}), stream=stream)
    event = decode(fixture_bodies()["mo_sms_keyword_start"])
    log = structlog.get_logger("test")
    log.info("callback applied", event_id=event.event_id, reference_id=event.reference_id, phone_number=event.phone_number,
             raw=event.raw, api_key=KEY, headers={"Authorization": f"TSA cid:{KEY}"})
    log.warning(f"reply to {PHONE} failed", email="someone@example.com")
    logging.getLogger("celery.worker").warning("stdlib line about +1 123-456-7890 and api_key=%s", "x")
    out = stream.getvalue()
    assert PHONE not in out and "123-456-7890" not in out
    assert KEY not in out and "someone@" not in out
    assert "*******7890" in out and "***@example.com" in out
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines[0]["reference_id"] == event.reference_id and lines[0]["event_id"] == event.event_id
    assert len(lines) == 3


def test_mask_text_leaves_ids_and_short_numbers():
    assert mask_text("code 3000 at 2023-10-31") == "code 3000 at 2023-10-31"
    assert mask_text("ref 35C8B5D509BC10689196FED2AD551B8A") == "ref 35C8B5D509BC10689196FED2AD551B8A"
    assert mask_text("call +44 20 7946 0958") == "call ********0958"


def test_batch_summary_counts_with_debug_off(redis_url):
    """The per-batch info line counts records, duplicates and quarantines whatever the log level."""
    from datetime import datetime, timezone

    from pipeline.record import Record, encode_batch
    from store.state import Store
    from workers.tasks import process_batch

    stream = io.StringIO()
    settings = load_settings({"TSPIPE_LOG_FORMAT": "json", "TSPIPE_LOG_LEVEL": "info", "REDIS_URL": redis_url})
    configure_logging(settings, stream=stream)
    now = datetime.now(timezone.utc).timestamp()
    body = fixture_bodies()["read_notification"]
    records = [Record(body=body, received_at=now), Record(body=body, received_at=now), Record(body=b"[]", received_at=now)]
    process_batch(encode_batch(records), store=Store.from_settings(settings))
    summary = [json.loads(line) for line in stream.getvalue().splitlines() if '"batch applied"' in line][-1]
    assert (summary["records"], summary["applied"], summary["duplicates"], summary["quarantined"]) == (3, 1, 1, 1)


def test_log_masker_keeps_uuids_and_task_ids_whole() -> None:
    """Issue 11, item 11: all-digit groups of a Celery task id are not phone numbers."""
    from config.logging import mask_text

    task_ids = ["12345678-0547-1fb1-8a2e-3c4d5e6f7a8b", "0b2e1a9c-1234-5678-9012-345678901234",
                "98765432-1098-7654-3210-987654321098"]
    for task_id in task_ids:
        line = f"Task tspipe.journal_sweep[{task_id}] succeeded in 0.01s; phone +1 555 010 9999"
        masked = mask_text(line)
        assert task_id in masked, masked
        assert "555 010" not in masked and masked.endswith("9999")
    assert mask_processor(None, "info", {"event": f"applied {task_ids[0]}", "task": task_ids[2]}) == {
        "event": f"applied {task_ids[0]}", "task": task_ids[2]}


@pytest.mark.parametrize("junk", ["x" * 1_000_000, "a:" * 500_000, "&secret" * 140_000, "'token" * 160_000,
                                  "http" * 250_000, "1 " * 500_000, "a." * 500_000])
def test_masking_hostile_text_does_not_hang(junk):
    """A 1 MB junk request line reached the log masker, whose patterns backtracked cubically (8,000 chars: 15 s),
    and wedged the ingress's event loop for minutes. Now: the value is cut to LOG_VALUE_MAX and every pattern
    starts only where its run starts. The bound is generous, for a loaded machine; the old code took hours."""
    import time

    from config.logging import LOG_VALUE_MAX

    start = time.process_time()
    masked = mask_text(junk)
    assert time.process_time() - start < 5.0
    assert len(masked) < LOG_VALUE_MAX + 100 and masked.endswith("more characters not logged]")


def test_a_secret_cut_by_the_length_cap_is_still_masked():
    from config.logging import LOG_VALUE_MAX

    text = "x" * (LOG_VALUE_MAX - 30) + ' "secret": "0123456789abcdefghijklmnopqrstuvwxyz"'
    masked = mask_text(text)
    assert "0123456789" not in masked and '"secret": "***' in masked
