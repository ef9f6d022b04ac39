"""Point arithmetic, property-tested: merge is associative and commutative, subtract inverts add,
downscaling and zero-threshold widening keep count and sum, and a merge equals the histogram of
all the values."""

from __future__ import annotations

import math
from dataclasses import replace

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from metricgate.model import BucketRange, ExponentialHistogramPoint, HistogramPoint, SummaryPoint
from metricgate.model.arithmetic import (
    accumulate,
    add,
    aligned,
    combinable,
    subtract,
)
from metricgate.model.exponential import (
    EMPTY,
    downscale,
    shift_to_fit,
    upper_bound,
    widen,
    zero_threshold_for,
)
from tests.exporters.prometheus_points import index_of

# -- strategies ------------------------------------------------------------------------------

counts_lists = st.lists(st.integers(0, 5), max_size=12)
sides = st.builds(BucketRange, st.integers(-24, 24), counts_lists.map(tuple))
thresholds = st.one_of(
    st.just(0.0),
    st.sampled_from([2.0**-8, 0.25, 0.5, 1.0, 3.0]),
    st.floats(min_value=1e-4, max_value=8.0),
)
# Integer-valued sums add exactly, so associativity is not blurred by float rounding.
sums = st.one_of(st.none(), st.integers(-1000, 1000).map(float))
extremes = st.one_of(st.none(), st.integers(-50, 50).map(float))


@st.composite
def exponential_points(
    draw: st.DrawFn, scales: st.SearchStrategy[int] | None = None
) -> ExponentialHistogramPoint:
    positive, negative = draw(sides), draw(sides)
    zero_count = draw(st.integers(0, 5))
    count = zero_count + sum(positive.counts) + sum(negative.counts)
    low, high = draw(extremes), draw(extremes)
    if low is not None and high is not None and low > high:
        low, high = high, low
    return ExponentialHistogramPoint(
        count,
        draw(sums),
        draw(scales if scales is not None else st.integers(-3, 6)),
        zero_count,
        positive,
        negative,
        draw(thresholds),
        low,
        high,
    )


BOUNDS = (0.5, 1.0, 5.0)


@st.composite
def histograms(draw: st.DrawFn) -> HistogramPoint:
    counts = tuple(draw(st.lists(st.integers(0, 9), min_size=4, max_size=4)))
    return HistogramPoint(sum(counts), draw(sums), BOUNDS, counts, draw(extremes), None)


def total(point: ExponentialHistogramPoint) -> int:
    return point.zero_count + sum(point.positive.counts) + sum(point.negative.counts)


def known_sum(point: ExponentialHistogramPoint | HistogramPoint) -> float | None:
    """The point's sum; an empty point's missing sum is 0."""
    return 0.0 if point.sum is None and not point.count else point.sum


def difference_sum(
    a: ExponentialHistogramPoint | HistogramPoint, b: ExponentialHistogramPoint | HistogramPoint
) -> float | None:
    """What `subtract(add(a, b), b)` knows of the sum: a's, when both sums are known."""
    if a.sum is None and b.sum is None:
        return None
    return None if known_sum(a) is None or known_sum(b) is None else known_sum(a)


def without_extremes(point: ExponentialHistogramPoint) -> ExponentialHistogramPoint:
    return replace(point, min=None, max=None)


def same_distribution(x: ExponentialHistogramPoint, y: ExponentialHistogramPoint) -> bool:
    """x and y describe the same values: equal once both share the wider zero bucket."""
    a, b = aligned(x, y)
    return a == b


# -- exponential histograms ------------------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(a=exponential_points(), b=exponential_points())
def test_exponential_add_is_commutative(
    a: ExponentialHistogramPoint, b: ExponentialHistogramPoint
) -> None:
    assert add(a, b, None) == add(b, a, None)


@settings(max_examples=400, deadline=None)
@given(a=exponential_points(), b=exponential_points(), c=exponential_points())
def test_exponential_add_is_associative(
    a: ExponentialHistogramPoint, b: ExponentialHistogramPoint, c: ExponentialHistogramPoint
) -> None:
    left = add(add(a, b, None), c, None)  # type: ignore[arg-type]
    right = add(a, add(b, c, None), None)  # type: ignore[arg-type]
    assert isinstance(left, ExponentialHistogramPoint)
    assert isinstance(right, ExponentialHistogramPoint)
    assert (left.count, left.sum, left.scale, left.min, left.max) == (
        right.count,
        right.sum,
        right.scale,
        right.min,
        right.max,
    )
    assert same_distribution(left, right)
    # Exactly equal unless scales and thresholds both vary: widening at a finer scale may take
    # in a bucket that, downscaled first, would have pushed the threshold further.
    if not (a.zero_threshold or b.zero_threshold or c.zero_threshold) or (
        a.scale == b.scale == c.scale
    ):
        assert left == right


@settings(max_examples=400, deadline=None)
@given(a=exponential_points(), b=exponential_points())
def test_exponential_subtract_inverts_add(
    a: ExponentialHistogramPoint, b: ExponentialHistogramPoint
) -> None:
    both = add(a, b, None)
    assert isinstance(both, ExponentialHistogramPoint)
    gained = subtract(both, b)
    assert isinstance(gained, ExponentialHistogramPoint)
    expected, _ = aligned(a, both)
    assert gained == replace(without_extremes(expected), sum=gained.sum)
    assert gained.sum == difference_sum(a, b)


@settings(max_examples=300, deadline=None)
@given(a=exponential_points(), b=exponential_points())
def test_alignment_keeps_counts_and_leaves_no_bucket_below_the_threshold(
    a: ExponentialHistogramPoint, b: ExponentialHistogramPoint
) -> None:
    x, y = aligned(a, b)
    assert x.scale == y.scale <= min(a.scale, b.scale) or not total(a) or not total(b)
    assert (
        x.zero_threshold
        == y.zero_threshold
        >= max(a.zero_threshold if total(a) else 0.0, b.zero_threshold if total(b) else 0.0)
    )
    for before, after in ((a, x), (b, y)):
        assert total(after) == total(before)
        assert (after.count, after.sum, after.min, after.max) == (
            before.count,
            before.sum,
            before.min,
            before.max,
        )
        for side in (after.positive, after.negative):
            for index, count in enumerate(side.counts, side.offset):
                if count:  # every populated bucket lies wholly above the zero bucket
                    assert upper_bound(index - 1, after.scale) >= after.zero_threshold


@settings(max_examples=300, deadline=None)
@given(a=exponential_points(), b=exponential_points(), cap=st.integers(1, 12))
def test_capped_add_keeps_count_and_sum_and_fits(
    a: ExponentialHistogramPoint, b: ExponentialHistogramPoint, cap: int
) -> None:
    capped = add(a, b, cap)
    free = add(a, b, None)
    assert isinstance(capped, ExponentialHistogramPoint)
    assert isinstance(free, ExponentialHistogramPoint)
    assert (capped.count, capped.sum, total(capped)) == (free.count, free.sum, total(free))
    assert len(capped.positive.counts) <= max(cap, 2)
    assert len(capped.negative.counts) <= max(cap, 2)
    assert same_distribution(capped, free)


@settings(max_examples=300, deadline=None)
@given(side=sides, by=st.integers(0, 8))
def test_downscale_keeps_every_count(side: BucketRange, by: int) -> None:
    coarse = downscale(side, by)
    assert sum(coarse.counts) == sum(side.counts)
    for index, count in enumerate(side.counts, side.offset):
        if count:
            assert coarse.counts[(index >> by) - coarse.offset] >= count


@settings(max_examples=300, deadline=None)
@given(side=sides, scale=st.integers(-3, 6), threshold=thresholds)
def test_widening_keeps_the_count(side: BucketRange, scale: int, threshold: float) -> None:
    widened_to = zero_threshold_for(threshold, (side,), scale)
    rest, moved = widen(side, widened_to, scale)
    assert widened_to >= threshold
    assert moved + sum(rest.counts) == sum(side.counts)
    assert zero_threshold_for(widened_to, (rest,), scale) == widened_to  # nothing left to move


magnitudes = st.floats(min_value=1e-3, max_value=1e6, allow_nan=False)
values_lists = st.lists(
    st.one_of(magnitudes, magnitudes.map(lambda v: -v), st.just(0.0)), min_size=1, max_size=40
)


def point_of(values: list[float], scale: int, threshold: float) -> ExponentialHistogramPoint:
    """The point an SDK would record for `values` at `scale` with a zero bucket of `threshold`."""

    def side(indexes: list[int]) -> BucketRange:
        if not indexes:
            return EMPTY
        low, high = min(indexes), max(indexes)
        return BucketRange(low, tuple(indexes.count(i) for i in range(low, high + 1)))

    outside = [v for v in values if abs(v) > threshold]
    return ExponentialHistogramPoint(
        len(values),
        None,
        scale,
        len(values) - len(outside),
        side([index_of(v, scale) for v in outside if v > 0]),
        side([index_of(v, scale) for v in outside if v < 0]),
        threshold,
    )


def near_a_boundary(values: list[float], scale: int) -> bool:
    return any(
        math.isclose(abs(v), upper_bound(index_of(v, scale) + step, scale), rel_tol=1e-9)
        for v in values
        if v
        for step in (-1, 0)
    )


@settings(max_examples=300, deadline=None)
@given(
    first=values_lists,
    second=values_lists,
    scales=st.tuples(st.integers(-2, 5), st.integers(-2, 5)),
    zero=st.tuples(st.sampled_from([0.0, 0.01, 0.3, 2.0]), st.sampled_from([0.0, 0.01, 0.3, 2.0])),
)
def test_merge_equals_the_histogram_of_all_values(
    first: list[float], second: list[float], scales: tuple[int, int], zero: tuple[float, float]
) -> None:
    assume(not near_a_boundary(first + second, min(scales)))
    merged = add(point_of(first, scales[0], zero[0]), point_of(second, scales[1], zero[1]), None)
    assert isinstance(merged, ExponentialHistogramPoint)
    assert merged.scale == min(scales)
    assert merged.zero_threshold >= max(zero)
    expected = point_of(first + second, merged.scale, merged.zero_threshold)
    assert replace(merged, sum=None) == expected


def test_zero_thresholds_are_widened_not_refused() -> None:
    """A delta with a wider zero bucket moves the cumulative's low buckets into its zero count."""
    cumulative = ExponentialHistogramPoint(
        6, 6.0, 0, 1, BucketRange(-3, (1, 2, 2)), EMPTY, 0.0
    )  # buckets (1/8, 1/4], (1/4, 1/2], (1/2, 1]
    delta = ExponentialHistogramPoint(1, 0.1, 0, 1, EMPTY, EMPTY, 0.3)
    merged = add(cumulative, delta)
    assert isinstance(merged, ExponentialHistogramPoint)
    # 0.3 cuts (1/4, 1/2] in two: the zero bucket grows to 1/2 and takes it whole.
    assert merged.zero_threshold == 0.5
    assert (merged.zero_count, merged.positive, merged.count) == (5, BucketRange(-1, (2,)), 7)


def test_an_empty_point_does_not_coarsen_or_widen() -> None:
    fine = ExponentialHistogramPoint(3, 3.0, 6, 0, BucketRange(10, (1, 2)), EMPTY, 0.0, 1.0, 1.2)
    empty = ExponentialHistogramPoint(0, None, -2, 0, EMPTY, EMPTY, 5.0)
    assert add(fine, empty) == fine
    assert add(empty, fine) == fine


# -- explicit histograms, summaries, numbers -------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(a=histograms(), b=histograms(), c=histograms())
def test_histogram_add_is_associative_and_commutative(
    a: HistogramPoint, b: HistogramPoint, c: HistogramPoint
) -> None:
    assert add(a, b) == add(b, a)
    assert add(add(a, b), c) == add(a, add(b, c))  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(a=histograms(), b=histograms())
def test_histogram_subtract_inverts_add(a: HistogramPoint, b: HistogramPoint) -> None:
    gained = subtract(add(a, b), b)  # type: ignore[arg-type]
    assert gained == replace(a, min=None, max=None, sum=gained.sum)  # type: ignore[union-attr]
    assert gained.sum == difference_sum(a, b)  # type: ignore[union-attr]


def test_histograms_combine_only_with_the_same_bounds() -> None:
    a = HistogramPoint(3, 3.0, (1.0, 5.0), (1, 1, 1))
    other = HistogramPoint(3, 3.0, (1.0, 2.0), (1, 1, 1))
    assert add(a, other) is None and subtract(a, other) is None
    assert not combinable(a, other) and combinable(a, a)
    assert subtract(a, HistogramPoint(4, 4.0, (1.0, 5.0), (2, 1, 1))) is None  # went down
    assert add(a, HistogramPoint(0, None, (), ())) == a  # an empty point is neutral


def test_min_and_max_are_known_only_when_every_side_knows_them() -> None:
    a = HistogramPoint(2, 2.0, (1.0,), (1, 1), 0.5, 3.0)
    assert add(a, HistogramPoint(1, 1.0, (1.0,), (1, 0), 0.2, 0.9)) == HistogramPoint(
        3, 3.0, (1.0,), (2, 1), 0.2, 3.0
    )
    unknown = add(a, HistogramPoint(1, None, (1.0,), (1, 0)))
    assert isinstance(unknown, HistogramPoint)
    assert (unknown.sum, unknown.min, unknown.max) == (None, None, None)


def test_summaries_and_numbers() -> None:
    a, b = SummaryPoint(10, 5.0, ((0.5, 1.0),)), SummaryPoint(4, 1.0, ((0.5, 2.0),))
    assert add(a, b) == SummaryPoint(14, 6.0, ())
    assert subtract(a, b) == SummaryPoint(6, 4.0, ())
    assert subtract(b, a) is None
    assert add(1.5, 2.0) == 3.5 and subtract(1.0, 3.0) == -2.0
    assert add(1.0, a) is None


def test_accumulate_restarts_on_what_does_not_combine() -> None:
    a = HistogramPoint(3, 3.0, (1.0, 5.0), (1, 1, 1))
    other = HistogramPoint(1, 1.0, (2.0,), (1, 0))
    assert accumulate(a, other) is other
    assert accumulate(2.0, 0.5) == 2.5
    assert accumulate(a, a) == HistogramPoint(6, 6.0, (1.0, 5.0), (2, 2, 2))


def test_shift_to_fit_stops_when_downscaling_changes_nothing() -> None:
    straddling = BucketRange(-3, (1, 1, 1, 1, 1, 1))
    assert shift_to_fit((straddling, straddling), 2) <= straddling.offset.bit_length() + 3
