"""Seeded mutations of the Telesign fixtures, shared by tests/faults/test_fuzz.py (CI size) and
bench/stack.py --fuzz-count (the full 100,000-body run)."""

from __future__ import annotations

import json
import random

from tests.conftest import fixture_bodies

BASES = list(fixture_bodies().values())
MUTATIONS = ("truncate", "wrong_type", "huge_string", "deep_nesting", "invalid_utf8", "duplicate_keys",
             "drop_key", "random_bytes", "not_object", "flip_bytes")


def _paths(value, prefix=()):
    if isinstance(value, dict):
        for k, v in value.items():
            yield prefix + (k,)
            yield from _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield prefix + (i,)
            yield from _paths(v, prefix + (i,))


def _set(data, path, value):
    target = data
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value


def mutate(rng: random.Random, base: bytes, kind: str) -> bytes:
    data = json.loads(base)
    paths = list(_paths(data))
    if kind == "truncate":
        return base[: rng.randrange(0, len(base))]
    if kind == "wrong_type":
        for _ in range(rng.randint(1, 3)):
            _set(data, rng.choice(paths), rng.choice([None, 1, -1.5, True, "x", [], {}, [1, "a"], 10**30]))
            paths = list(_paths(data))
        return json.dumps(data).encode()
    if kind == "huge_string":
        _set(data, rng.choice(paths), "A" * rng.choice([1000, 30000, 70000]))
        return json.dumps(data).encode()
    if kind == "deep_nesting":
        depth = rng.choice([50, 500, 5000])
        return b'{"status": ' + b"[" * depth + b"]" * depth + b"}"
    if kind == "invalid_utf8":
        pos = rng.randrange(0, len(base))
        return base[:pos] + rng.choice([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\x80\x80"]) + base[pos:]
    if kind == "duplicate_keys":
        text = base.decode()
        return text.replace('"status"', '"status": {"code": "nope"}, "status"', 1).encode()
    if kind == "drop_key":
        path = rng.choice(paths)
        target = data
        for part in path[:-1]:
            target = target[part]
        del target[path[-1]]
        return json.dumps(data).encode()
    if kind == "random_bytes":
        return bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 200)))
    if kind == "not_object":
        return rng.choice([b"[]", b"null", b"42", b'"status"', b"[{}]", b"{}"])
    if kind == "flip_bytes":
        out = bytearray(base)
        for _ in range(rng.randint(1, 5)):
            out[rng.randrange(len(out))] = rng.getrandbits(8)
        return bytes(out)
    raise ValueError(kind)


def fuzz_bodies(count: int, seed: int = 7) -> list[tuple[str, bytes]]:
    """(mutation kind, body) pairs, every kind in turn, deterministic for a seed."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        kind = MUTATIONS[i % len(MUTATIONS)]
        out.append((kind, mutate(rng, rng.choice(BASES), kind)))
    return out
