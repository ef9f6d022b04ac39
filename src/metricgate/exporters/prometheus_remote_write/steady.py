"""A group of gauge or counter points written at once, when each is a known series' plain sample.

The encoder's per-point loop (`Encoder._numbers`) costs a dozen Python steps per sample. Most
groups are steady: every series already has its state, runs of one timestamp (a scrape, an
export), no flags, valid counter values. `write_numbers` checks that with a few C-level passes,
takes each run's states and label heads from the encoder's `RunMemo` (a pointer comparison per
sample for a run seen before, a lookup otherwise), and writes the group with list slicing and
one `bytes.join` per fragment (over several shards, each run's positions per shard are picked
with an `itemgetter` kept in its memo), so a sample costs a `struct.pack` and its share of a
join. Anything else returns False before writing a byte, and the caller takes the per-point loop.

Invariant: the bytes and fragment cuts are exactly what the per-point loop writes for the same
group (a zero value drops its value field there and here), and the written series are marked
updated at `now` (in their states, or in their run's memo until it is folded). A group refused
half-way may have marked some of its series updated at `now`, and may have created states for
some new ones: the per-point loop then writes them at that same `now`, with those same states.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import groupby, repeat
from typing import Final

from metricgate.exporters.prometheus_remote_write.fragments import Builder
from metricgate.exporters.prometheus_remote_write.outputs import SeriesState
from metricgate.exporters.prometheus_remote_write.runs import KnownRun, RunMemo
from metricgate.model import MetricPoints, Series
from metricgate.wire.remotewrite.encode import ZERO_DOUBLE, pack_double, timestamp_tail

_MIN_POINTS: Final = 8
"""Below this, the checks cost more than the per-point loop saves."""
_NOT_NEGATIVE: Final = (0.0).__le__
"""True for a counter value the loop would write (False for NaN and negatives)."""
_NS_PER_MS: Final = 1_000_000


def write_numbers(
    group: MetricPoints,
    memo: RunMemo,
    builders: list[Builder],
    now: float,
    *,
    counter: bool,
    create: Callable[[Series], SeriesState | None] | None = None,
) -> bool:
    """Write `group` (gauges or cumulative sums) if it is steady; False, writing nothing, if not.
    A series without a state gets one from `create` (a new series among known ones, as churn
    brings them, keeps the group on this path)."""
    values = group.values
    if len(values) < _MIN_POINTS:
        return False
    if any(group.flags):
        return False
    if counter and not all(map(_NOT_NEGATIVE, values)):  # type: ignore[arg-type]
        return False
    # Points come in runs of one timestamp (one scrape, one export): a tail per run, and the
    # states of a run that came before as it is now come from the memo without a lookup.
    series = group.series
    tails: list[bytes] = []
    states: list[SeriesState] = []
    heads: list[bytes] = []
    runs: list[tuple[int, int, KnownRun, bytes]] = []
    start = 0
    for stamp, points in groupby(group.timestamps):
        tail = timestamp_tail(stamp // _NS_PER_MS)
        if len(tail) != 7:
            return False
        size = sum(1 for _ in points)
        run = memo.run(series, start, start + size, now, create)
        if run is None:
            return False
        states += run.states
        heads += run.heads
        tails += repeat(tail, size)
        runs.append((start, size, run, tail))
        start += size
    packed = list(map(pack_double, values))
    if ZERO_DOUBLE in packed:
        # proto3 leaves a zero value out: that entry is a shape of its own, ending in its tail.
        index = packed.index(ZERO_DOUBLE)
        while index >= 0:
            entry = states[index].outputs[0].entry(ZERO_DOUBLE, tails[index])
            heads[index] = entry[:-7]
            packed[index] = b""
            index = _find(packed, ZERO_DOUBLE, index + 1)
    if len(builders) == 1:
        _write(builders[0], heads, packed, tails)
        return True
    # Several shards: each run's positions per shard are picked (the picks are kept with the
    # run), so each builder gets its series' entries in point order, as the loop writes them.
    shards = len(builders)
    for start, size, run, tail in runs:
        stop = start + size
        run_heads, run_packed = heads[start:stop], packed[start:stop]
        for shard, pick in run.split(shards):
            picked = pick(run_heads)
            _write(builders[shard], picked, pick(run_packed), [tail] * len(picked))
    return True


def _find(items: list[bytes], value: bytes, start: int) -> int:
    """`items.index(value, start)`, or -1."""
    try:
        return items.index(value, start)
    except ValueError:
        return -1


def _write(
    builder: Builder, heads: Sequence[bytes], packed: Sequence[bytes], tails: list[bytes]
) -> None:
    """Append the entries, cutting a fragment whenever one is full (as `Builder.room(1)`)."""
    size = len(heads)
    start = 0
    while start < size:
        room = builder.max_samples - builder.samples
        if room <= 0:
            if builder.samples:
                builder.cut()
            room = max(builder.max_samples, 1)
        take = min(size - start, room)
        parts = tails[start : start + take] * 3
        parts[0::3] = heads[start : start + take]
        parts[1::3] = packed[start : start + take]
        parts[2::3] = tails[start : start + take]
        builder.out += b"".join(parts)
        builder.samples += take
        start += take
