"""Erasing one person (a phone number or an e-mail address) from everything tspipe keeps in Redis.

What holds an address: a message's state (the event, raw body included)
and its history and pending-index entry; the recent-events list; quarantined
bodies; dead letters; the opt-out hash and index; and the archive's backlog
(bodies waiting for PostgreSQL). Each is scanned and the entries that
mention the address, in any spelling (+1 123-456-7890, 11234567890...), are
removed. An opt-out survives as a keyed hash: keyed BLAKE2b of the normalized
address with TSPIPE_ERASURE_KEY, so GET /v1/opt-outs/{address} still answers
opted_out true while Redis holds nothing that reveals the address (without
the key, the hash cannot be checked against a list of candidate numbers).

Scans are O(keys) by design: erasure is a rare operator action, and the hot
path should not pay for an address index it would seldom use. Batches still
in the queue (not yet applied) are processed after the erasure as new data.
"""

from __future__ import annotations

import hashlib
import re
from typing import Protocol

import redis

from pipeline.record import decode_batch, encode_batch
from store import keys
from store.archive_backlog import Backlog

_SEPARATORS = rb"[\s().\-]*"


class ErasureKeyMissing(RuntimeError):
    pass


def normalized(address: str) -> str:
    address = address.strip()
    if "@" in address:
        return address.lower()
    return "".join(ch for ch in address if "0" <= ch <= "9")


# 6 to 15 digits (E.164's most), with the usual separators: fewer digits would match (and erase)
# unrelated numbers in stored bytes. The OpenAPI document's path pattern is the same.
_PHONE = re.compile(r"\+?[ (]*(?:[0-9][ ().\-]*){6,15}")
# The same pattern as the OpenAPI document's (ingest/openapi.json), with no \s: Python's and
# ECMAScript's \s differ (U+0085, U+FEFF), and schemathesis holds the two to each other.
_EMAIL = re.compile(r"[^@\x00-\x20\x7f]{1,64}@[^@\x00-\x20\x7f]{1,255}")


def subject_pattern(address: str) -> re.Pattern[bytes]:
    """Matches the address in any spelling inside stored bytes (JSON, msgpack, raw bodies).

    ValueError for anything that is not a phone number (6 to 15 digits, with the
    usual separators) or an e-mail address.
    """
    address = address.strip()
    if not (_PHONE.fullmatch(address) or _EMAIL.fullmatch(address)):
        raise ValueError(f"{address!r} is neither a phone number nor an e-mail address")
    value = normalized(address)
    if "@" in value:
        return re.compile(re.escape(value.encode()), re.IGNORECASE)
    digits = _SEPARATORS.join(re.escape(d.encode()) for d in value)
    return re.compile(rb"(?<![0-9])" + digits + rb"(?![0-9])")


def _mac(key: str):
    """Keyed BLAKE2b (a MAC by design, RFC 7693) with a 32-byte key derived from TSPIPE_ERASURE_KEY.

    Not HMAC-SHA256: the bulk opt-out check digests up to 1,000 addresses per
    request, and HMAC-SHA256 cost the web process 1.5 ms for them against
    0.5 ms for keyed BLAKE2b (each from a prepared state copied per address)."""
    return hashlib.blake2b(key=hashlib.sha256(key.encode()).digest(), digest_size=16)


def optout_digester(key: str):
    """The keyed hash (32 hex digits) an erased address's opt-out is kept under, as a function of the
    address: the keyed state is built once and copied per address (the bulk check digests 1,000)."""
    base = _mac(key)

    def digest(address: str) -> str:
        h = base.copy()
        h.update((address if address.isdigit() else normalized(address)).encode())
        return h.hexdigest()

    return digest


def optout_digest(key: str, address: str) -> str:
    return optout_digester(key)(address)


class ArchiveSide(Protocol):
    """What erasure needs from the PostgreSQL archive (archive.erase.ArchiveEraser)."""

    def lock(self): ...
    def references(self) -> list[str]: ...
    def delete(self) -> int: ...


def _scan(client: redis.Redis, match: str):
    for key in client.scan_iter(match=match, count=1000):
        yield key


def _lists(client: redis.Redis, key: str, pattern: re.Pattern[bytes]) -> int:
    removed = 0
    for value in client.lrange(key, 0, -1):
        if pattern.search(value):
            removed += client.lrem(key, 0, value)
    return removed


def scrub_backlog(client: redis.Redis, pattern: re.Pattern[bytes]) -> int:
    """Remove the address's records from batches waiting for the archive; returns the records removed."""
    backlog = Backlog(client)
    removed = 0
    for entry in backlog.entries():
        if not pattern.search(entry.blob):
            continue
        records = decode_batch(entry.blob)
        kept = [r for r in records if not pattern.search(r.body)]
        if backlog.replace(entry, encode_batch(kept) if kept else b""):
            removed += len(records) - len(kept)
    return removed


def _states(client: redis.Redis, pattern: re.Pattern[bytes], references: list[str]) -> int:
    """The records of the subject's messages (the archive names them). A record holds no address
    (store/message.py), but it ties a reference id to the person's messages, so it goes too."""
    removed = 0
    for ref in set(references):
        pipe = client.pipeline(transaction=True)
        pipe.delete(keys.MESSAGE.format(reference_id=ref))
        pipe.zrem(keys.PENDING_INDEX, ref)
        removed += pipe.execute()[0] > 0
    return removed


def _optouts(client: redis.Redis, pattern: re.Pattern[bytes], digest: str | None) -> int:
    """Turn the address's opt-out hashes into one keyed-hash record (if the newest says opted out); returns hashes removed."""
    prefix = keys.OPTOUT.split("{", 1)[0]
    addresses = {m for m in client.zrange(keys.OPTOUT_INDEX, 0, -1) if pattern.fullmatch(m)}
    for key in _scan(client, keys.OPTOUT.format(address="*")):
        address = key[len(prefix):]
        if pattern.fullmatch(address):
            addresses.add(address)
    removed = 0
    # The newest record decides, as it would have had the address stayed: a STOP kept from an earlier
    # erasure stays unless a START came after it (then the kept record goes, or it would come back).
    newest: dict[bytes, bytes] | None = None
    records = [client.hgetall(keys.OPTOUT.format(address=address.decode())) for address in addresses]
    if digest is not None:
        records.append(client.hgetall(keys.OPTOUT_ERASED.format(digest=digest)))
    for data in records:
        if data and (newest is None or float(data.get(b"ts", 0)) > float(newest.get(b"ts", 0))):
            newest = data
    if digest is not None and newest is not None:
        erased_key = keys.OPTOUT_ERASED.format(digest=digest)
        pipe = client.pipeline(transaction=True)
        if newest.get(b"opted_out") == b"1":
            pipe.hset(erased_key, mapping={
                "opted_out": "1", "channel": newest.get(b"channel", b""), "keyword": newest.get(b"keyword", b""),
                "ts": newest.get(b"ts", b"0"), "updated_at": newest.get(b"updated_at", b""),
            })
            pipe.sadd(keys.OPTOUT_ERASED_SET, digest)
        else:
            pipe.delete(erased_key)
            pipe.srem(keys.OPTOUT_ERASED_SET, digest)
        pipe.execute()
    for address in addresses:
        pipe = client.pipeline(transaction=True)
        pipe.delete(keys.OPTOUT.format(address=address.decode()))
        pipe.zrem(keys.OPTOUT_INDEX, address)
        removed += pipe.execute()[0]
    return removed


def erase_subject(client: redis.Redis, address: str, erasure_key: str | None,
                  archive: ArchiveSide | None = None) -> dict[str, int]:
    """Erase `address` from the archive (when given) and from every Redis store; returns counts per store.

    Order: the archive's lock is taken first (writers pause), then the Redis backlog is
    scrubbed and the archive's rows deleted, and the lock is released by the commit; only
    then the Redis state, lists and opt-outs. Running it twice is harmless.
    """
    pattern = subject_pattern(address)
    digest = optout_digest(erasure_key, address) if erasure_key else None
    if digest is None and _has_optout(client, pattern):
        raise ErasureKeyMissing("TSPIPE_ERASURE_KEY is not set: the address has an opt-out that must survive "
                                "erasure as a keyed hash; set TSPIPE_ERASURE_KEY to a long random secret")
    counts: dict[str, int] = {}
    references: list[str] = []
    if archive is not None:
        with archive.lock():
            counts["backlog"] = scrub_backlog(client, pattern)
            references = archive.references()
            counts["archive"] = archive.delete()
    else:
        counts["backlog"] = scrub_backlog(client, pattern)
    counts["state"] = _states(client, pattern, references)
    counts["recent_events"] = _lists(client, keys.RECENT_EVENTS, pattern)
    counts["quarantine"] = _lists(client, keys.QUARANTINE, pattern)
    counts["dead_letters"] = _lists(client, keys.DEADLETTER, pattern)
    # The lists' byte counts no longer match: the next push recounts them (store/capped_list.py).
    client.delete(keys.QUARANTINE_BYTES, keys.DEADLETTER_BYTES)
    counts["opt_outs"] = _optouts(client, pattern, digest)
    return counts


def _has_optout(client: redis.Redis, pattern: re.Pattern[bytes]) -> bool:
    prefix = keys.OPTOUT.split("{", 1)[0]
    return any(pattern.fullmatch(key[len(prefix):]) for key in _scan(client, keys.OPTOUT.format(address="*")))


def erased_optout(client: redis.Redis, address: str, erasure_key: str | None) -> dict | None:
    """The keyed-hash opt-out of an erased address, or None."""
    if not erasure_key:
        return None
    data = client.hgetall(keys.OPTOUT_ERASED.format(digest=optout_digest(erasure_key, address)))
    return data or None


def erase_everywhere(settings, address: str) -> dict[str, int]:
    """`tspipe erase` and DELETE /v1/subjects: Redis from settings.redis_url, the archive when DATABASE_URL is set.

    Raises ValueError (not an address), ErasureKeyMissing, redis.RedisError or psycopg.Error.
    """
    from store.connection import connect

    subject_pattern(address)  # a bad address fails before anything is touched
    client = connect(settings.redis_url)
    try:
        if not settings.database_url:
            return erase_subject(client, address, settings.erasure_key)
        import psycopg

        from archive.erase import ArchiveEraser

        with psycopg.connect(settings.database_url, autocommit=True, connect_timeout=5) as conn:
            return erase_subject(client, address, settings.erasure_key, ArchiveEraser(conn, address))
    finally:
        client.close()
