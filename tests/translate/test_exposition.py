"""The shared page converter: a page replayed through the cached plan converts exactly as a
fresh converter converts it."""

from __future__ import annotations

from itertools import accumulate

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metricgate.model import INTERNER
from metricgate.translate.exposition import Converted, PageConverter
from metricgate.wire.exposition import Labels, TextParser


def label(name: str, labels: Labels) -> tuple[str, Labels]:
    return name, tuple(sorted({**dict(labels), "job": "x"}.items()))


def page_text(values: list[int], created: float) -> str:
    a, b, c, d, e = values
    return (
        "# TYPE jobs_total counter\n"
        f'jobs_total{{q="1"}} {a}\njobs_total{{q="2"}} {b}\n'
        f'# TYPE jobs_created gauge\njobs_created{{q="1"}} {created}\n'
        "# TYPE temp gauge\n"
        f"temp {c}\n"
        "# TYPE lat histogram\n"
        f'lat_bucket{{le="0.5"}} {d}\nlat_bucket{{le="+Inf"}} {d + e}\n'
        f"lat_sum 3.5\nlat_count {d + e}\n"
        "# TYPE s summary\n"
        f's{{quantile="0.5"}} {c}\ns_sum {a}\ns_count {b}\n'
    )


def flat(converted: Converted) -> list[tuple[object, ...]]:
    return [
        (g.metric, tuple(g.series), tuple(g.values), tuple(g.timestamps), tuple(g.start_timestamps))
        for g in converted.groups
    ]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 1000), min_size=5, max_size=5), st.floats(1e9, 2e9))
def test_replayed_plan_matches_a_fresh_conversion(values: list[int], created: float) -> None:
    resource, scope = INTERNER.intern_resource(()), INTERNER.intern_scope("t")
    parser = TextParser()
    cached = PageConverter(
        resource, scope, lambda n, ls: (n, tuple(sorted({**dict(ls), "job": "x"}.items())))
    )
    cached.convert(parser.parse(page_text([1, 2, 3, 4, 5], 1.5e9)), 7)
    page = parser.parse(page_text(values, created))
    replayed = cached.convert(page, 9)
    fresh = PageConverter(
        resource, scope, lambda n, ls: (n, tuple(sorted({**dict(ls), "job": "x"}.items())))
    )
    expected = fresh.convert(TextParser().parse(page_text(values, created)), 9)
    assert flat(replayed) == flat(expected)
    assert replayed.samples == expected.samples == 11


def test_a_failed_conversion_is_not_replayed() -> None:
    resource, scope = INTERNER.intern_resource(()), INTERNER.intern_scope("t")
    calls = []

    def refuse(name: str, labels: Labels) -> tuple[str, Labels]:
        calls.append(name)
        if name == "b":
            raise ValueError("over a limit")
        return name, labels

    parser, converter = TextParser(), PageConverter(resource, scope, refuse)
    for _ in range(3):
        with pytest.raises(ValueError, match="over a limit"):
            converter.convert(parser.parse("a 1\nb 2\n"), 1)
    assert calls.count("b") == 3


_BAD = st.sampled_from([-1.0, -0.0, float("nan"), float("inf"), 1e308, 0.5])


@st.composite
def _counts(draw: st.DrawFn) -> list[float]:
    """Cumulative bucket counts (then sum, count), now and then one value out of line."""
    counts = [
        float(c) for c in accumulate(draw(st.lists(st.integers(0, 9), min_size=7, max_size=7)))
    ]
    if draw(st.booleans()):
        counts[draw(st.integers(0, 6))] = draw(_BAD)
    return counts


_BOUNDS = ["0.1", "0.5", "1", "1.0", "5", "+Inf"]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(_BOUNDS), min_size=0, max_size=5, unique=True),
    st.booleans(),
    st.booleans(),
    st.lists(_counts(), min_size=2, max_size=4),
)
def test_replayed_histograms_match_a_fresh_conversion(
    bounds: list[str], with_sum: bool, with_count: bool, rounds: list[list[float]]
) -> None:
    """Histograms of a replayed page (assembled from their layout) equal, or fail as, the line by
    line assembly of a fresh converter, for any counts and any mix of bucket, sum, count lines."""
    resource, scope = INTERNER.intern_resource(()), INTERNER.intern_scope("t")
    parser, cached = TextParser(), PageConverter(resource, scope, label)
    for counts in rounds:
        lines = ["# TYPE h histogram", "# TYPE g gauge", "g 1"]
        for route in ("a", "b"):
            lines += [
                f'h_bucket{{le="{b}",r="{route}"}} {c}'
                for b, c in zip(bounds, counts[: len(bounds)], strict=True)
            ]
            if with_sum:
                lines.append(f'h_sum{{r="{route}"}} {counts[5]}')
            if with_count:
                lines.append(f'h_count{{r="{route}"}} {counts[6]}')
        text = "\n".join(lines) + "\n"
        fresh = PageConverter(resource, scope, label)
        try:
            expected = flat(fresh.convert(TextParser().parse(text), 5))
        except Exception as exc:
            with pytest.raises(type(exc), match=str(exc).replace("+", r"\+").split(":")[0]):
                cached.convert(parser.parse(text), 5)
            continue
        assert repr(flat(cached.convert(parser.parse(text), 5))) == repr(expected)
