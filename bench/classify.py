"""decode+classify throughput on one core, against plain json.loads of the same bodies in the same run.

Usage: python bench/classify.py [--events N] [--repeats R]
Prints events/s for both and the ratio, as the median of R runs.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline import decode  # noqa: E402
from tspipe.cmd_samples import unique  # noqa: E402

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "telesign"

# Shapes the fixtures do not show: a Verify status and an SMS API delivery report.
EXTRA = [
    b'{"reference_id":"V1","sub_resource":"sms","status":{"code":290,"description":"Message in progress","updated_on":"2024-01-01T00:00:00Z"},"verify":{"code_state":"UNKNOWN","code_entered":null},"additional_info":{"message_parts_count":1},"errors":[]}',
    b'{"reference_id":"S1","sub_resource":"sms","status":{"code":"200","description":"Delivered to handset","updated_on":"Thu, 23 Jun 2022 19:03:44 GMT"},"errors":[]}',
]


_CLOCK = re.compile(rb'("updated_on"\s*:\s*"[^"]*?\d\d:)(\d\d:\d\d)([.:]\d+)?')


def vary_clock(body: bytes, n: int) -> bytes:
    """Give every `updated_on` in the body its own minute, second and fraction (same format and length).

    Real callbacks carry microsecond timestamps that almost never repeat, so
    the timestamp cache must not see the bench's fixtures repeat theirs.
    """

    def replace(match: re.Match[bytes]) -> bytes:
        fraction = match.group(3)
        if fraction:
            digits = len(fraction) - 1
            fraction = fraction[:1] + (b"%0*d" % (digits, n % 10**digits))
        return match.group(1) + b"%02d:%02d" % ((n // 60) % 60, n % 60) + (fraction or b"")

    return _CLOCK.sub(replace, body)


def bodies(count: int) -> list[bytes]:
    shapes = [p.read_bytes() for p in sorted(FIXTURES.glob("*.json"))] + EXTRA
    # Unique reference ids and timestamps, as in production, so no cache can flatter the numbers.
    out = []
    for i in range(count):
        shape = shapes[i % len(shapes)]
        out.append(vary_clock(unique(shape, i), i))
    return out


def rate(fn, items: list[bytes]) -> float:
    start = time.perf_counter()
    for body in items:
        fn(body)
    return len(items) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    items = bodies(args.events)
    for body in items[:20]:
        decode(body)
    ours, baseline = [], []
    for _ in range(args.repeats):
        ours.append(rate(decode, items))
        baseline.append(rate(json.loads, items))
    o, b = statistics.median(ours), statistics.median(baseline)
    print(f"events: {args.events} x {args.repeats} runs, 12 shapes (10 fixtures + verify + SMS DR)")
    print(f"pipeline.decode (decode + classify -> Event): {o:>10,.0f} events/s per core (median)")
    print(f"json.loads (parse only, baseline):            {b:>10,.0f} events/s per core (median)")
    print(f"ratio decode/json.loads: {o / b:.2f}   goal >= 300,000 events/s: {'met' if o >= 300_000 else 'NOT met'}")


if __name__ == "__main__":
    main()
