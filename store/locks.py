"""Locks held by one run of a periodic job: taken with a random token, released only by their holder.

A run that outlives its lock's TTL must not delete the lock a newer run holds
meanwhile, so the release compares the token and deletes in one script.
"""

from __future__ import annotations

import uuid

import redis

# KEYS[1]: the lock. ARGV[1]: the token its holder set. Deletes only while the lock still holds it.
RELEASE_LOCK = r"""
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def acquire(client: redis.Redis, key: str, ttl_seconds: int) -> str | None:
    """The new lock's token, or None when someone else holds it."""
    token = uuid.uuid4().hex
    return token if client.set(key, token, nx=True, ex=ttl_seconds) else None


def release(client: redis.Redis, key: str, token: str) -> bool:
    """Delete the lock if it is still ours; True when it was."""
    return bool(client.register_script(RELEASE_LOCK)(keys=[key], args=[token]))
