"""POST /v1/opt-outs/check on the real app and a real Redis: answers, bounds, token, one round trip."""

from __future__ import annotations

import time

import redis

from config import load_settings
from ingest.app import create_app
from pipeline.record import Record, encode_batch
from store.state import Store
from tests.workers.conftest import body
from workers.tasks import process_batch


def stop_from(phone: str, second: int) -> bytes:
    return body("mo_whatsapp_keyword_stop", phone_number=phone, reference_id=f"R{phone}",
                status_updated_on=f"2024-01-01T00:00:{second:02d}Z")


async def test_answers_which_addresses_are_opted_out(redis_url, aiohttp_client):
    store = Store(redis.Redis.from_url(redis_url))
    process_batch(encode_batch([Record(stop_from(p, i), time.time()) for i, p in enumerate(("15550001111", "15550002222"))]),
                  store)
    client = await aiohttp_client(create_app(load_settings({"REDIS_URL": redis_url})))
    asked = ["+1 (555) 000-1111", "15550003333", "15550002222", "someone@example.com"]
    answer = await client.post("/v1/opt-outs/check", json={"addresses": asked})
    assert answer.status == 200
    data = await answer.json()
    assert data["checked"] == 4
    assert [entry["address"] for entry in data["opted_out"]] == ["15550001111", "15550002222"]
    # recorded_at is when tspipe recorded the STOP (now), not the STOP's own 2024 time.
    assert all(entry["recorded_at"] >= "2026" for entry in data["opted_out"]), data
    # Exactly at the limit is fine, and costs one command on the server.
    store.client.config_resetstat()
    many = await client.post("/v1/opt-outs/check", json={"addresses": [f"1555{n:07d}" for n in range(1000)]})
    assert many.status == 200 and (await many.json())["checked"] == 1000
    calls = {name: stat["calls"] for name, stat in store.client.info("commandstats").items()}
    assert calls.pop("cmdstat_zmscore") == 1 and set(calls) <= {"cmdstat_info", "cmdstat_config"}
    store.client.close()


async def test_bad_requests_get_400_with_a_reason(redis_url, aiohttp_client):
    client = await aiohttp_client(create_app(load_settings({"REDIS_URL": redis_url})))
    cases = [
        (b"not json", "body must be"),
        (b'{"numbers": ["1"]}', "body must be"),
        (b'{"addresses": "15550001111"}', "body must be"),
        (b'{"addresses": []}', "must not be empty"),
        (b'{"addresses": ["---"]}', "addresses[0] is neither"),
        (('{"addresses": [' + ",".join(f'"{n}"' for n in range(1001)) + "]}").encode(), "at most 1000 addresses"),
        (b'{"addresses": ["' + b"1" * 400_000 + b'"]}', "body larger than"),
    ]
    for raw, reason in cases:
        answer = await client.post("/v1/opt-outs/check", data=raw, headers={"Content-Type": "application/json"})
        assert answer.status == 400, raw[:40]
        assert reason in (await answer.json())["error"]


async def test_bearer_token_like_the_other_read_routes(redis_url, aiohttp_client):
    client = await aiohttp_client(create_app(load_settings({"REDIS_URL": redis_url, "TSPIPE_API_TOKEN": "t0ken"})))
    payload = {"addresses": ["15550001111"]}
    assert (await client.post("/v1/opt-outs/check", json=payload)).status == 401
    assert (await client.post("/v1/opt-outs/check?token=t0ken", json=payload)).status == 401
    ok = await client.post("/v1/opt-outs/check", json=payload, headers={"Authorization": "Bearer t0ken"})
    assert ok.status == 200 and (await ok.json()) == {"checked": 1, "opted_out": []}


async def test_an_imported_opt_out_survives_erasure_in_get_and_in_the_check(redis_url, aiohttp_client):
    """Issue 16: erasure and the suppression list agree. The import writes what a STOP writes, so erasure
    keeps it as a keyed hash; GET /v1/opt-outs and the bulk check both still answer opted out."""
    from store.erasure import erase_subject
    from store.suppression import ImportRow, import_rows

    secret = "erasure-secret-for-the-test-0123456789"
    client_sync = redis.Redis.from_url(redis_url)
    import_rows(client_sync, [ImportRow(address="15550009999", action="stop", channel="sms", keyword="stop", ts=1.7e9),
                              ImportRow(address="15550008888", action="stop", channel="sms", keyword="stop", ts=1.7e9)])
    assert erase_subject(client_sync, "+1 555 000 9999", secret)["opt_outs"] == 1
    assert client_sync.zscore("ts:optouts", "15550009999") is None  # the address itself is gone
    client = await aiohttp_client(create_app(load_settings({"REDIS_URL": redis_url, "TSPIPE_ERASURE_KEY": secret})))
    single = await client.get("/v1/opt-outs/15550009999")
    assert single.status == 200 and (await single.json())["opted_out"] is True
    answer = await client.post("/v1/opt-outs/check", json={"addresses": ["15550009999", "15550008888", "15550007777"]})
    found = (await answer.json())["opted_out"]
    assert [e["address"] for e in found] == ["15550009999", "15550008888"]
    assert found[0]["recorded_at"] is None and found[1]["recorded_at"] is not None
    client_sync.close()


async def test_a_start_after_an_erasure_decides_and_a_second_erasure_keeps_it(redis_url, aiohttp_client):
    """The erased opt-out is one digest in a set for the check; a START sent after the erasure brings the
    address back opted in (the plain hash decides), and erasing it again must not resurrect the old STOP."""
    from store.erasure import erase_subject
    from store.suppression import ImportRow, import_rows

    secret = "erasure-secret-for-the-test-0123456789"
    client_sync = redis.Redis.from_url(redis_url)
    stop = ImportRow(address="15550009999", action="stop", channel="sms", keyword="stop", ts=1.7e9)
    import_rows(client_sync, [stop])
    erase_subject(client_sync, "15550009999", secret)
    assert client_sync.scard("ts:optouts-erased") == 1
    client = await aiohttp_client(create_app(load_settings({"REDIS_URL": redis_url, "TSPIPE_ERASURE_KEY": secret})))

    async def opted_out() -> list[str]:
        answer = await client.post("/v1/opt-outs/check", json={"addresses": ["15550009999", "15550001234"]})
        return [e["address"] for e in (await answer.json())["opted_out"]]

    assert await opted_out() == ["15550009999"]
    import_rows(client_sync, [ImportRow(address="15550009999", action="start", channel="sms", keyword="start", ts=1.8e9)])
    assert await opted_out() == []
    assert (await (await client.get("/v1/opt-outs/15550009999")).json())["opted_out"] is False
    erase_subject(client_sync, "15550009999", secret)
    assert client_sync.scard("ts:optouts-erased") == 0 and await opted_out() == []
    assert (await client.get("/v1/opt-outs/15550009999")).status == 404
    import_rows(client_sync, [ImportRow(address="15550009999", action="stop", channel="sms", keyword="stop", ts=1.9e9)])
    erase_subject(client_sync, "15550009999", secret)
    assert await opted_out() == ["15550009999"]
    client_sync.close()
