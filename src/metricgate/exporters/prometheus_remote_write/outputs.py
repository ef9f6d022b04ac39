"""What remote-write keeps per model series, and the entries one point of it becomes.

A `SeriesState` holds the series' shard key, its labels, and the encoded label block of each of
its output series: one for a gauge or counter; for a histogram `_bucket{le}` per bound, `+Inf`,
`_sum` and `_count`; for a summary one per quantile, `_sum` and `_count`. They are built when the
series is new or its bounds (quantiles) change, with the `le`/`quantile` texts of
`metricgate.translate.bounds`, so a steady point costs a `struct.pack` per entry. A bound or
quantile repeated within a point is written once (the last): no request holds a series twice.

Invariant: `outputs` always belong to `layout` (the bounds or quantiles they were built for), and
`spelled` is `bound_labels(layout)`.
"""

from __future__ import annotations

from bisect import insort
from itertools import accumulate as running_sums

from metricgate.model import ExponentialHistogramPoint, HistogramPoint, PointValue, SummaryPoint
from metricgate.translate import exponential_to_explicit
from metricgate.translate.bounds import BoundLabels, bound_labels
from metricgate.wire.remotewrite.encode import EncodedSeries, label_block, pack_double

__all__ = ["SeriesState"]

_NO_BOUNDS = bound_labels(())


class SeriesState:
    """What remote-write keeps per model series (see the module docstring)."""

    __slots__ = (
        "head",
        "key",
        "labels",
        "layout",
        "name",
        "outputs",
        "spelled",
        "timestamp",
        "updated",
        "value",
    )

    def __init__(self, key: int, name: str, labels: list[tuple[str, str]], now: float) -> None:
        self.key = key
        self.name = name
        self.labels = labels
        """Sorted, non-empty labels without `__name__` (external labels merged in)."""
        self.outputs: tuple[EncodedSeries, ...] = ()
        self.head = b""
        """`outputs[0].head` of a gauge or counter, kept here: one object less per point."""
        self.layout: object = None
        """The bounds or quantiles `outputs` were built for (histograms and summaries)."""
        self.spelled: BoundLabels = _NO_BOUNDS
        """Their `le` or `quantile` texts and which positions are written."""
        self.value: PointValue | None = None
        """The running cumulative value of a delta series."""
        self.timestamp = 0
        self.updated = now

    def encoded(self, suffix: str, extra: tuple[str, str] | None = None) -> EncodedSeries:
        labels = self.labels
        if extra is None and (not labels or labels[0][0] > "__name__"):  # the usual order
            return EncodedSeries(label_block([("__name__", self.name + suffix), *labels]))
        labels = labels.copy()
        insort(labels, ("__name__", self.name + suffix))
        if extra is not None:
            insort(labels, extra)
        return EncodedSeries(label_block(labels))

    def entries(self, value: PointValue) -> list[tuple[EncodedSeries, bytes]]:
        """The (output series, packed value) entries of `value`; `outputs` follow its layout."""
        if isinstance(value, ExponentialHistogramPoint):
            value = exponential_to_explicit(value)
        if isinstance(value, HistogramPoint):
            # Counts that do not fit the bounds (a broken producer) leave only +Inf, sum and count.
            fits = len(value.bucket_counts) == len(value.bounds) + 1
            bounds = value.bounds if fits else ()
            if self.layout is not bounds and self.layout != bounds:
                self.layout, self.spelled = bounds, bound_labels(bounds)
                self.outputs = (
                    *(self.encoded("_bucket", ("le", text)) for text in self.spelled.written),
                    self.encoded("_bucket", ("le", "+Inf")),
                    self.encoded("_sum"),
                    self.encoded("_count"),
                )
            outputs, keep = self.outputs, self.spelled.keep
            entries = []
            running = 0
            if keep is None:
                for i in range(len(bounds)):
                    running += value.bucket_counts[i]
                    entries.append((outputs[i], pack_double(running)))
            else:  # repeated bounds: each `le` once, with the count through its last
                cumulative = list(running_sums(value.bucket_counts[: len(bounds)]))
                for out, i in enumerate(keep):
                    entries.append((outputs[out], pack_double(cumulative[i])))
            count = pack_double(value.count)
            entries.append((outputs[-3], count))
            if value.sum is not None:
                entries.append((outputs[-2], pack_double(value.sum)))
            entries.append((outputs[-1], count))
            return entries
        if isinstance(value, SummaryPoint):
            quantiles = tuple(q for q, _ in value.quantiles)
            if self.layout != quantiles:
                self.layout, self.spelled = quantiles, bound_labels(quantiles)
                self.outputs = (
                    *(self.encoded("", ("quantile", text)) for text in self.spelled.written),
                    self.encoded("_sum"),
                    self.encoded("_count"),
                )
            outputs = self.outputs
            pairs, keep = value.quantiles, self.spelled.keep
            if keep is not None:  # a repeated quantile: the last value wins
                pairs = tuple(pairs[i] for i in keep)
            entries = [(outputs[i], pack_double(v)) for i, (_, v) in enumerate(pairs)]
            entries.append((outputs[-2], pack_double(value.sum)))
            entries.append((outputs[-1], pack_double(value.count)))
            return entries
        return [(self.outputs[0], pack_double(value))]
