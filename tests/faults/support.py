"""Shared fault-test helpers: unique signed callbacks built from the bundled Telesign samples, and stopping
the processes a test (or a benchmark) started."""

from __future__ import annotations

import json
import subprocess

from tspipe.cmd_samples import load_samples, unique

SAMPLES = load_samples()


def unique_callbacks(count: int, start: int = 1) -> list[tuple[str, bytes]]:
    """(channel, body) pairs, every sample shape in turn, each copy with its own reference id."""
    out = []
    for i in range(start, start + count):
        _name, channel, body = SAMPLES[i % len(SAMPLES)]
        out.append((channel, unique(body, i)))
    return out


def reference_id(body: bytes) -> str | None:
    return json.loads(body).get("reference_id")


def stop_processes(*processes: subprocess.Popen) -> None:
    """SIGTERM them all (they shut down side by side), give each 15 s, then SIGKILL what is left."""
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
