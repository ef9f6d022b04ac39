"""The shared page converter: a page replayed through the cached plan converts exactly as a
fresh converter converts it."""

from __future__ import annotations

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
