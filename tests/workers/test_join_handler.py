"""The example JOIN handler (examples/tspipe-join-handler), pip-installed as a real entry point,
receives exactly the JOIN messages through a real worker process and the sender's keyword map."""

from __future__ import annotations

import json
import os
import time

import pytest
import redis

from pipeline.record import Record
from store import keys, message
from tests.workers.conftest import pip_installed
from tests.workers.delivery_support import wait_for
from tests.workers.journal_support import enqueue, settled, start_worker_process
from tests.conftest import REPO_ROOT

@pytest.fixture(scope="module")
def installed_join_handler(tmp_path_factory):
    with pip_installed("tspipe-join-handler", "tspipe-join-handler", tmp_path_factory.mktemp("example")):
        yield


def inbound(n: int, text: str, channel: str = "sms") -> bytes:
    """An inbound message from its own phone number, as Telesign posts it (no action of Telesign's own)."""
    status = {"code": 1500, "description": "Delivered to customer", "updated_on": f"2024-05-01T10:00:{n:02d}Z"}
    if channel == "whatsapp":
        return json.dumps({"reference_id": f"J{n}", "status": status, "phone_number": f"1555010{n:04d}",
                           "waba_phone_number": "15550009999", "content": {"content": {"body": text}, "type": "text"}}).encode()
    return json.dumps({"reference_id": f"J{n}", "status": status, "sub_resource": "mo_sms",
                       "user_response": {"sender_id": "4442", "iso_country_code": "US",
                                         "phone_number": f"1555010{n:04d}", "mo_message": text}}).encode()


def test_join_handler_receives_exactly_the_join_messages(installed_join_handler, redis_url, tmp_path) -> None:
    joins = tmp_path / "joins.jsonl"
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, REDIS_URL=redis_url, TSPIPE_LOG_LEVEL="warning",
               TSPIPE_DATA_DIR=str(tmp_path / "data"), TSPIPE_JOIN_FILE=str(joins),
               TSPIPE_KEYWORDS='{"preset": "ctia", "keywords": {"JOIN": "generic", "PROMO": "generic"}}')
    texts = ["JOIN", "join!", "  Join ", "JOIN now", "STOP", "joint", "PROMO", "hello", "STOPALL", "join"]
    channels = ["sms"] * 9 + ["whatsapp"]
    bodies = [inbound(n, text, ch) for n, (text, ch) in enumerate(zip(texts, channels))]
    wanted = {f"1555010{n:04d}" for n, text in enumerate(texts) if text.strip().rstrip("!").casefold() == "join"}
    client = redis.Redis.from_url(redis_url)
    enqueue(client, [Record(b, time.time(), None) for b in bodies[:5]])
    enqueue(client, [Record(b, time.time(), None) for b in bodies[5:] + bodies[:2]])  # two JOINs again: duplicates
    worker = start_worker_process(env, log=tmp_path / "worker.log")
    try:
        assert wait_for(lambda: message.count(client, "J*") == len(bodies), timeout=40)
        assert wait_for(lambda: settled(client), timeout=20)  # the plug-in calls queued by fan-out are done too
    finally:
        worker.terminate()
        worker.wait(10)
    rows = [json.loads(line) for line in joins.read_text().splitlines()]
    assert sorted(r["address"] for r in rows) == sorted(wanted) and len(wanted) == 4
    assert {r["keyword"] for r in rows} == {"join"} and {r["channel"] for r in rows} == {"sms", "whatsapp"}
    assert client.hget(keys.OPTOUT.format(address="15550100008"), "opted_out") == b"1"  # ctia's STOPALL
    client.close()
