"""The strict text format 0.0.4 parser of the `pushgateway` receiver."""

from __future__ import annotations

import math

import pytest

from metricgate.receivers.pushgateway.text import TextFormatError, parse


def test_families_types_help_and_escapes() -> None:
    text = (
        "# HELP reqs_total Requests \\\\ with\\nnewline.\n"
        "# TYPE reqs_total counter\n"
        'reqs_total{path="/a\\"b\\\\c\\n",code="200",} 3\n'
        "\n"
        "# a comment\n"
        "# TYPE lat histogram\n"
        'lat_bucket{le="0.5"} 1\n'
        'lat_bucket{le="+Inf"} 2\n'
        "lat_sum 0.75\n"
        "lat_count 2\n"
        'loose{a="x"} NaN\n'
        "neg -Inf 1700000000000\n"
        '  spaced   {a = "1" }   1.5e3  \n'
    )
    families = {family.name: family for family in parse(text)}
    assert families["reqs_total"].type == "counter"
    assert families["reqs_total"].help == "Requests \\ with\nnewline."
    [sample] = families["reqs_total"].samples
    assert sample.labels == (("code", "200"), ("path", '/a"b\\c\n'))
    assert [s.name for s in families["lat"].samples] == [
        "lat_bucket",
        "lat_bucket",
        "lat_sum",
        "lat_count",
    ]
    assert families["loose"].type == "untyped" and math.isnan(families["loose"].samples[0].value)
    assert families["neg"].samples[0].value == -math.inf
    assert families["neg"].samples[0].timestamp_ms == 1_700_000_000_000
    assert families["spaced"].samples[0].value == 1500.0


@pytest.mark.parametrize(
    ("text", "line", "needle"),
    [
        ("up 1\nup 2\n", 2, "appears twice"),
        ("# TYPE up gauge\n# TYPE up gauge\n", 2, "second TYPE"),
        ("# HELP up a\n# HELP up b\n", 2, "second HELP"),
        ("up 1\n# TYPE up gauge\n", 2, "after its samples"),
        ("# TYPE up meter\n", 1, "unknown type"),
        ("\n\n1up 1\n", 3, "metric name"),
        ('up{a="1",a="2"} 1\n', 1, "given twice"),
        ('up{a-b="1"} 1\n', 1, "invalid label name"),
        ('up{a="1} 1\n', 1, "unterminated"),
        ('up{a="\\t"} 1\n', 1, "invalid escape"),
        ('up{a="1" b="2"} 1\n', 1, "expected ','"),
        ("up one\n", 1, "invalid value"),
        ("up 1_000\n", 1, "invalid value"),
        ("up 1 2.5\n", 1, "invalid timestamp"),
        ("up 1 2 3\n", 1, "expected a value"),
        ("up\n", 1, "expected a value"),
        ('up{a="1"}1\n', 1, "space before the value"),
    ],
)
def test_errors_name_the_line(text: str, line: int, needle: str) -> None:
    with pytest.raises(TextFormatError) as caught:
        parse(text)
    assert caught.value.line == line
    assert needle in str(caught.value) and f"line {line}:" in str(caught.value)


def test_summary_samples_belong_to_the_family() -> None:
    text = '# TYPE s summary\ns{quantile="0.5"} 1\ns_sum 3\ns_count 2\ns_bucket 1\n'
    families = {family.name: family for family in parse(text)}
    assert len(families["s"].samples) == 3
    assert families["s_bucket"].type == "untyped"
