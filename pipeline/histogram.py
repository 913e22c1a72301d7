"""A fixed, log-spaced histogram of seconds, so percentiles survive being summed across rollup rows.

Hourly rollup rows cannot keep every message's time to final, and
percentiles of percentiles are meaningless. Every row instead keeps counts
in the same fixed buckets; rows merge by adding counts element-wise, and
p50/p90/p99 are read off the merged counts. Bucket i (1 <= i < N-1) holds
(LOW·R^(i-1), LOW·R^i] with R = 2^(1/3); bucket 0 holds everything up to
LOW, the last everything above the top. A percentile is reported as the
geometric middle of its bucket, so it is within a factor R^(1/2) (12%) of
the exact value of the samples.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence
from itertools import accumulate

LOW = 0.1  # seconds: anything faster counts as instantaneous
RATIO = 2 ** (1 / 3)
TOP = 7 * 86400.0  # a week: Telesign gives up on a message long before
# Buckets 1..N-2 cover (LOW, TOP]; 0 is <= LOW, N-1 is > TOP.
N = math.ceil(math.log(TOP / LOW, RATIO)) + 2
_LOG_RATIO = math.log(RATIO)


def bucket_of(seconds: float) -> int:
    if not seconds > LOW:  # also NaN and negatives (clock skew): instantaneous
        return 0
    if seconds > TOP:
        return N - 1
    index = math.ceil(math.log(seconds / LOW) / _LOG_RATIO - 1e-9)
    return max(1, min(index, N - 2))


def bounds(index: int) -> tuple[float, float]:
    """(lower, upper] of a bucket in seconds; bucket 0 is [0, LOW], the last (TOP, inf)."""
    if index <= 0:
        return 0.0, LOW
    if index >= N - 1:
        return TOP, math.inf
    return LOW * RATIO ** (index - 1), LOW * RATIO ** index


def representative(index: int) -> float:
    """The value reported for a percentile that falls in this bucket."""
    lower, upper = bounds(index)
    if index <= 0:
        return LOW
    if math.isinf(upper):
        return TOP
    return math.sqrt(lower * upper)


def percentile(counts: Sequence[int], q: float) -> float | None:
    """The q-quantile (0 < q <= 1) of the samples counted, by nearest rank; None when there are none."""
    total = sum(counts)
    if total <= 0:
        return None
    rank = max(1, math.ceil(q * total))
    running = 0
    for index, count in enumerate(counts):
        running += count
        if running >= rank:
            return representative(index)
    return representative(len(counts) - 1)


def percentiles(counts: Sequence[int], qs: Sequence[float]) -> list[float | None]:
    """percentile(counts, q) for each q, in one pass over the counts (a stats page reads hundreds of groups)."""
    cumulative = list(accumulate(counts))
    total = cumulative[-1] if cumulative else 0
    if total <= 0:
        return [None] * len(qs)
    last = len(cumulative) - 1
    return [representative(min(bisect_left(cumulative, max(1, math.ceil(q * total))), last)) for q in qs]


def merge(rows: Sequence[Sequence[int]]) -> list[int]:
    out = [0] * N
    for row in rows:
        for index, count in enumerate(row):
            out[index] += count
    return out
