"""The overflow series' policy on top of the model's point arithmetic: increases and resets."""

from __future__ import annotations

from metricgate.model import BucketRange, ExponentialHistogramPoint, HistogramPoint, SummaryPoint
from metricgate.model.arithmetic import add
from metricgate.processors.cardinality_limit.fold import increase

BOUNDS = (1.0, 5.0)


def hist(*buckets: int, bounds: tuple[float, ...] = BOUNDS) -> HistogramPoint:
    return HistogramPoint(sum(buckets), float(sum(buckets)), bounds, buckets, 0.5, 9.0)


def expo(scale: int, offset: int, *counts: int, zero: int = 0) -> ExponentialHistogramPoint:
    return ExponentialHistogramPoint(
        sum(counts) + zero, None, scale, zero, BucketRange(offset, counts), BucketRange(0, ())
    )


def test_numbers() -> None:
    assert add(1.5, 2.0) == 3.5
    assert increase(7.0, 5.0, monotonic=True) == 2.0
    assert increase(3.0, 5.0, monotonic=True) == 3.0  # reset
    assert increase(3.0, 5.0, monotonic=False) == -2.0  # an up-down counter went down
    assert increase(4.0, None, monotonic=True) == 4.0


def test_histograms_add_bucket_wise_and_refuse_other_bounds() -> None:
    assert add(hist(1, 2, 3), hist(1, 1, 1)) == HistogramPoint(9, 9.0, BOUNDS, (2, 3, 4), 0.5, 9.0)
    assert add(hist(1, 2, 3), hist(1, 2, 3, bounds=(1.0, 2.0))) is None
    assert increase(hist(1, 2, 3, bounds=(1.0, 2.0)), hist(1, 2, 3), monotonic=True) == hist(
        1, 2, 3, bounds=(1.0, 2.0)
    )  # other bounds: a reset


def test_histogram_increase_and_reset() -> None:
    gained = increase(hist(3, 3, 3), hist(1, 2, 3), monotonic=True)
    assert isinstance(gained, HistogramPoint)
    assert (gained.count, gained.bucket_counts) == (3, (2, 1, 0))
    assert increase(hist(0, 1, 0), hist(1, 2, 3), monotonic=True) == hist(0, 1, 0)


def test_exponential_histograms_align_to_the_coarser_scale() -> None:
    # scale 1 buckets 4 and 5 merge into scale 0 bucket 2
    total = add(expo(1, 4, 1, 2), expo(0, 2, 10))
    assert isinstance(total, ExponentialHistogramPoint)
    assert (total.scale, total.positive, total.count) == (0, BucketRange(2, (13,)), 13)
    gained = increase(expo(0, 1, 2, 5, zero=1), expo(0, 2, 3), monotonic=True)
    assert isinstance(gained, ExponentialHistogramPoint)
    assert (gained.positive, gained.zero_count, gained.count) == (BucketRange(1, (2, 2)), 1, 5)
    assert increase(expo(0, 2, 1), expo(0, 2, 3), monotonic=True) == expo(0, 2, 1)


def test_summaries_keep_count_and_sum_only() -> None:
    a, b = SummaryPoint(10, 5.0, ((0.5, 1.0),)), SummaryPoint(4, 1.0, ((0.5, 2.0),))
    assert add(a, b) == SummaryPoint(14, 6.0, ())
    assert increase(a, b, monotonic=True) == SummaryPoint(6, 4.0, ())
    assert increase(b, a, monotonic=True) == SummaryPoint(4, 1.0, ())
