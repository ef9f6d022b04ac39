"""Exponential histograms as explicit buckets, checked against counting the raw values."""

from __future__ import annotations

import math

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from metricgate.model import BucketRange, ExponentialHistogramPoint, HistogramPoint
from metricgate.model.exponential import upper_bound
from metricgate.translate.exponential import to_explicit
from tests.exporters.prometheus_points import exponential_point as histogram


def cumulative(point: HistogramPoint) -> list[tuple[float, int]]:
    out, total = [], 0
    for bound, count in zip(point.bounds, point.bucket_counts, strict=False):
        total += count
        out.append((bound, total))
    return out


def near_a_boundary(values: list[float], bounds: tuple[float, ...]) -> bool:
    return any(
        math.isclose(v, b, rel_tol=1e-9, abs_tol=0.0) for v in values for b in bounds if v != 0
    )


magnitudes = st.floats(min_value=1e-6, max_value=1e9, allow_nan=False)
values_lists = st.lists(
    st.one_of(magnitudes, magnitudes.map(lambda v: -v), st.just(0.0)), min_size=1, max_size=60
)


@settings(max_examples=300, deadline=None)
@given(values=values_lists, scale=st.integers(min_value=-3, max_value=6))
def test_bucket_counts_match_counting_the_values(values: list[float], scale: int) -> None:
    point = to_explicit(histogram(values, scale), max_buckets=10_000)
    assume(not near_a_boundary(values, point.bounds))
    assert list(point.bounds) == sorted(set(point.bounds))
    for bound, count in cumulative(point):
        assert count == sum(1 for v in values if v <= bound), bound
    assert point.count == len(values) == sum(point.bucket_counts)
    assert point.bucket_counts[-1] == 0  # nothing above the last finite bound


@settings(max_examples=200, deadline=None)
@given(values=values_lists, scale=st.integers(min_value=0, max_value=8), cap=st.integers(1, 20))
def test_capped_conversion_downscales_without_losing_counts(
    values: list[float], scale: int, cap: int
) -> None:
    point = to_explicit(histogram(values, scale), max_buckets=cap)
    assume(not near_a_boundary(values, point.bounds))
    assert len(point.bounds) <= max(cap, 5)
    for bound, count in cumulative(point):
        assert count == sum(1 for v in values if v <= bound)
    assert sum(point.bucket_counts) == len(values)


def test_upper_bounds() -> None:
    assert upper_bound(0, 0) == 2.0
    assert upper_bound(-1, 0) == 1.0
    assert upper_bound(1, 1) == 2.0
    assert upper_bound(0, 1) == math.sqrt(2)
    assert upper_bound(0, -2) == 16.0
    assert upper_bound(5000, 0) == math.inf


def test_zero_threshold_and_empty_points() -> None:
    empty = to_explicit(
        ExponentialHistogramPoint(0, 0.0, 3, 0, BucketRange(0, ()), BucketRange(0, ()))
    )
    assert (empty.bounds, empty.bucket_counts, empty.count) == ((), (0,), 0)
    zeros = to_explicit(
        ExponentialHistogramPoint(4, 0.0, 0, 4, BucketRange(0, ()), BucketRange(0, ()), 0.001)
    )
    assert (zeros.bounds, zeros.bucket_counts) == ((0.001,), (4, 0))


def test_inconsistent_count_goes_to_the_overflow_bucket() -> None:
    point = to_explicit(
        ExponentialHistogramPoint(5, 1.0, 0, 0, BucketRange(0, (1, 1)), BucketRange(0, ()))
    )
    assert point.count == 5 and point.bucket_counts == (1, 1, 3)


def test_downscaling_stops_when_both_sides_straddle_zero() -> None:
    side = BucketRange(-3, (1, 1, 1, 1, 1, 1))
    point = to_explicit(ExponentialHistogramPoint(12, 0.0, 0, 0, side, side), max_buckets=2)
    assert len(point.bounds) <= 5 and sum(point.bucket_counts) == 12
