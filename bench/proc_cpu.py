"""CPU seconds a process has used, for the benchmarks' per-item CPU figures.

CPU time is what the benchmarks quote next to wall time: a machine shared with
other work stretches wall time far more than it inflates the CPU a piece of
work costs. Linux only (/proc), like the benchmarks.
"""

from __future__ import annotations

import os

import psutil

_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of one process so far (all its threads), from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def tree_cpu_seconds(pid: int) -> float:
    """The same for a process and all its children (a prefork pool, PostgreSQL's backends); gone ones count 0."""
    total = 0.0
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    for proc in procs:
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total
