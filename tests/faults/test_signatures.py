"""Issue 7f: every way a callback's signature can be wrong gets 401 and nothing reaches the queue.
The signature covers only the body (no timestamp), so a forged, replayed-onto-another-body or
stale-key request must be refused before it is stored."""

from __future__ import annotations

import base64
import os
from pathlib import Path

from ingest.app import create_app
from tests.faults.support import unique_callbacks
from tests.ingest.conftest import API_KEY, CUSTOMER_ID, make_settings, signed
from tests.ingest.queue import queued_bodies

NEW_KEY = base64.b64encode(b"rotated-key-" + b"k" * 52).decode()


async def test_bad_signatures_are_401_and_never_queued(aiohttp_client, redis_url: str, tmp_path: Path) -> None:
    (ch1, body), (ch2, other) = unique_callbacks(2)
    forged = base64.b64encode(os.urandom(32)).decode()
    cases = {
        "forged": {"Authorization": f"TSA {CUSTOMER_ID}:{forged}"},
        "forged_bare": {"Authorization": forged},
        "missing": {},
        "replayed_onto_other_body": signed(other),
        "wrong_customer": signed(body, customer_id="SOMEONE-ELSE"),
        "wrong_key": signed(body, key=NEW_KEY),
        "garbage": {"Authorization": "TSA nonsense"},
        "x_ts_forged": {"X-TS-Authorization": forged},
    }
    client = await aiohttp_client(create_app(make_settings(redis_url, tmp_path)))
    statuses = {}
    for name, headers in cases.items():
        statuses[name] = (await client.post(f"/callbacks/{ch1}", data=body, headers=headers)).status
    queued = queued_bodies(redis_url)
    refused = sum(1 for s in statuses.values() if s == 401)
    print(f"\n[fault signatures] cases={len(cases)} refused_401={refused} queued={len(queued)} {statuses}")
    assert statuses == {name: 401 for name in cases}
    assert queued == []
    # The control: the same body, correctly signed, is accepted.
    assert (await client.post(f"/callbacks/{ch1}", data=body, headers=signed(body))).status == 200


async def test_key_rotation_old_key_refused_once_removed(aiohttp_client, redis_url: str, tmp_path: Path) -> None:
    (channel, old_body), (_c, new_body), (_c2, late_old) = unique_callbacks(3)
    both = await aiohttp_client(create_app(make_settings(redis_url, tmp_path, telesign_api_keys=(API_KEY, NEW_KEY))))
    assert (await both.post(f"/callbacks/{channel}", data=old_body, headers=signed(old_body))).status == 200
    assert (await both.post(f"/callbacks/{channel}", data=new_body, headers=signed(new_body, key=NEW_KEY))).status == 200
    await both.close()
    only_new = await aiohttp_client(
        create_app(make_settings(redis_url, tmp_path / "2", telesign_api_keys=(NEW_KEY,)))
    )
    status = (await only_new.post(f"/callbacks/{channel}", data=late_old, headers=signed(late_old))).status
    queued = queued_bodies(redis_url)
    print(f"\n[fault key-rotation] old_key_after_rotation={status} queued={len(queued)}")
    assert status == 401
    assert sorted(queued) == sorted([old_body, new_body])
