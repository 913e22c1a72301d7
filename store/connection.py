"""The one way tspipe reaches Redis: a sync and an asyncio client from one URL and one set of options.

Every process (web, worker, beat, CLI) builds its clients here, so the URL
forms, TLS, timeouts and retries are decided once:

- URL: `redis://`, `rediss://` (TLS) or `unix://`. TLS options ride in the
  URL's query, as redis-py reads them: `rediss://:pw@host:6380/0?ssl_cert_reqs=required&ssl_ca_certs=/ca.pem`.
  An unset REDIS_URL gives a client for a port nothing listens on, so a
  process without Redis fails on first use with a connection error rather
  than at import.
- Timeouts: a Redis that stops answering (paused, partitioned) fails a call
  after `timeout` seconds instead of hanging a worker for good.
- Retries: a dropped connection or a timeout is retried `retries` times with
  jittered exponential backoff. Safe for every write tspipe makes: each is
  idempotent (dedup keys, journal task ids, SET NX claims). The ingress
  passes `retries=0`: it spools a failed batch at once instead of waiting.
"""

from __future__ import annotations

import os
from functools import lru_cache

import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from config.settings import UNREACHABLE_REDIS_URL

CONNECT_TIMEOUT_S = 5.0
# Longest single command: apply scripts take ~20 ms per 1,000 events, so 10 s only fires on a dead Redis.
TIMEOUT_S = 10.0
RETRIES = 3
_RETRY_ON = (RedisConnectionError, RedisTimeoutError)


def _options(timeout: float | None, connect_timeout: float | None, retries: int, is_async: bool) -> dict:
    backoff = ExponentialBackoff(cap=1.0, base=0.05) if retries else NoBackoff()
    retry = (AsyncRetry if is_async else Retry)(backoff, retries, supported_errors=_RETRY_ON)
    return {"socket_timeout": timeout, "socket_connect_timeout": connect_timeout, "retry": retry}


def connect(url: str | None, *, timeout: float | None = TIMEOUT_S, connect_timeout: float | None = CONNECT_TIMEOUT_S,
            retries: int = RETRIES, single_connection: bool = False) -> redis.Redis:
    """A sync client (its own connection pool) for `url`."""
    return redis.Redis.from_url(url or UNREACHABLE_REDIS_URL, single_connection_client=single_connection,
                                **_options(timeout, connect_timeout, retries, is_async=False))


def connect_async(url: str | None, *, timeout: float | None = TIMEOUT_S,
                  connect_timeout: float | None = CONNECT_TIMEOUT_S, retries: int = RETRIES,
                  single_connection: bool = False) -> aioredis.Redis:
    """An asyncio client for `url`; it connects on first use, in the loop that uses it."""
    return aioredis.Redis.from_url(url or UNREACHABLE_REDIS_URL, single_connection_client=single_connection,
                                   **_options(timeout, connect_timeout, retries, is_async=True))


@lru_cache(maxsize=8)
def _shared(url: str | None, pid: int) -> redis.Redis:
    return connect(url)


def shared(url: str | None) -> redis.Redis:
    """One sync client per URL per process, for code that has no client handed to it (tasks, signals).

    Keyed by pid as well, so a forked worker child never reuses its parent's sockets.
    """
    return _shared(url, os.getpid())
