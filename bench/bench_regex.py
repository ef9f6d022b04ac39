"""Cost of one user regex match: RE2 (what metricgate uses) against Python's backtracking `re`.

Two tables:

- pathological pairs: a pattern with nested or overlapping repetition and a value that almost
  matches. A backtracking engine needs about 2^n steps for n characters; RE2 needs one pass. The
  `re` column is measured on a value short enough to finish (n given), RE2 also on a 10,000
  character value, to show it stays in microseconds while `re` doubles with every character.
- everyday pairs (the relabel rules of `bench_relabel.py`): what a match costs per call, the
  price of linear time on the common case (it is paid once per distinct value: rules memoise).

    .venv/bin/python bench/bench_regex.py
"""

from __future__ import annotations

import argparse
import re
import statistics
import time
from collections.abc import Callable
from functools import partial

from metricgate.regex import GoRegex

# (pattern, value maker, n for Python's re): each pattern means the same in both syntaxes.
PATHOLOGICAL: list[tuple[str, Callable[[int], str], int]] = [
    ("(a+)+b", lambda n: "a" * n + "!", 24),
    ("(x+x+)+y", lambda n: "x" * n, 24),
    ("(a|aa)*c", lambda n: "a" * n, 32),
    ("(.*a){12}", lambda n: "a" * n + "b", 25),
]
EVERYDAY = [
    ("(\\d)\\d\\d", "404"),
    ("otel_scope_.*", "otel_scope_name"),
    ("(.*)_total", "metric_17_total"),
    ("metric_.*", "metric_17_n"),
    ("/api/(v[0-9]+)/.*", "/api/v2/items/12345"),
    ("5.*;[0-3]", "503;7"),
]


def per_call(fn: Callable[[], object], budget: float = 0.2) -> float:
    """Median seconds per call over a few batches sized to take about `budget` seconds."""
    calls = 1
    while True:
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        elapsed = time.perf_counter() - start
        if elapsed > budget / 5 or calls >= 1 << 20:
            break
        calls *= 4
    runs = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        runs.append((time.perf_counter() - start) / calls)
    return statistics.median(runs)


def fmt(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:8.2f} s "
    if seconds >= 1e-3:
        return f"{seconds * 1e3:8.2f} ms"
    if seconds >= 1e-6:
        return f"{seconds * 1e6:8.2f} us"
    return f"{seconds * 1e9:8.0f} ns"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--long", type=int, default=10_000, help="RE2's long value length")
    args = parser.parse_args()

    print("pathological (anchored, no match)")
    print(f"  {'pattern':<12} {'n':>3} {'re':>11} {'RE2':>11}   {'RE2, n=' + str(args.long):>13}")
    for pattern, value, n in PATHOLOGICAL:
        short, long = value(n), value(args.long)
        backtracking = re.compile(f"(?:{pattern})\\Z")
        start = time.perf_counter()
        backtracking.match(short)
        re_time = time.perf_counter() - start
        linear = GoRegex(pattern)
        assert not linear.matches(short) and not linear.matches(long)
        print(
            f"  {pattern:<12} {n:>3} {fmt(re_time)} {fmt(per_call(partial(linear.matches, short)))}"
            f"   {fmt(per_call(partial(linear.matches, long)))}"
        )

    print("everyday (anchored search with submatches, per call)")
    print(f"  {'pattern':<20} {'re':>11} {'RE2':>11}")
    for pattern, text in EVERYDAY:
        backtracking = re.compile(f"(?:{pattern})\\Z")
        linear = GoRegex(pattern)
        assert (backtracking.match(text) is None) == (linear.search(text) is None)
        print(
            f"  {pattern:<20} {fmt(per_call(partial(backtracking.match, text)))}"
            f" {fmt(per_call(partial(linear.search, text)))}"
        )


if __name__ == "__main__":
    main()
