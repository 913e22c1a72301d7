"""The one connection factory: every URL form, sync and asyncio, and its retry policy."""

from __future__ import annotations


import pytest
import redis
import redis.asyncio as aioredis

from store import connection


def test_sync_and_async_clients_reach_the_same_redis(redis_url):
    client = connection.connect(redis_url)
    client.set("ts:probe", "1")

    async def read() -> bytes | None:
        aclient = connection.connect_async(redis_url)
        try:
            return await aclient.get("ts:probe")
        finally:
            await aclient.aclose()

    import asyncio

    assert asyncio.run(read()) == b"1"
    client.close()


def test_rediss_url_gives_a_tls_connection():
    client = connection.connect("rediss://:secret@redis.example:6380/0?ssl_cert_reqs=required")
    assert client.connection_pool.connection_class is redis.SSLConnection
    aclient = connection.connect_async("rediss://redis.example:6380/0")
    assert aclient.connection_pool.connection_class is aioredis.SSLConnection


def test_unset_url_fails_on_use_with_a_connection_error():
    client = connection.connect(None, connect_timeout=0.2, retries=0)
    with pytest.raises(redis.ConnectionError):
        client.ping()


def test_shared_client_is_one_per_url_and_process(redis_url):
    assert connection.shared(redis_url) is connection.shared(redis_url)
    assert connection.shared(redis_url) is not connection.connect(redis_url)
    assert connection.shared(redis_url).ping()


def test_retries_are_configurable_and_off_for_the_ingress():
    kwargs = connection.connect("redis://127.0.0.1:1/0", retries=0).connection_pool.connection_kwargs
    assert kwargs["retry"].get_retries() == 0
    kwargs = connection.connect("redis://127.0.0.1:1/0").connection_pool.connection_kwargs
    assert kwargs["retry"].get_retries() == connection.RETRIES
