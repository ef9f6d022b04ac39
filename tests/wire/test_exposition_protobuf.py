"""The delimited protobuf format: field numbers pinned by hand-written bytes, and the page it
gives matching the text rendering of the same metrics."""

from __future__ import annotations

import struct

import pytest

from metricgate.wire.exposition import ExpositionError, Page, TextParser, parse_protobuf
from metricgate.wire.exposition.schema import MetricFamily


def delimited(*messages: bytes) -> bytes:
    return b"".join(bytes([len(m)]) + m for m in messages)


def rows(page: Page) -> list[tuple[object, ...]]:
    return [
        (e.name, e.labels, v, page.resolve(e)[1])
        for e, v in zip(page.entries, page.values, strict=True)
    ]


def test_hand_encoded_counter() -> None:
    # MetricFamily{name=1:"c_total", type=3:COUNTER(0), metric=4:{label=1:{name=1:"a",
    # value=2:"b"}, counter=3:{value=1:2.5}}}
    counter = b"\x09" + struct.pack("<d", 2.5)
    metric = b"\x0a\x06\x0a\x01a\x12\x01b" + b"\x1a" + bytes([len(counter)]) + counter
    family = b"\x0a\x07c_total" + b"\x18\x00" + b"\x22" + bytes([len(metric)]) + metric
    page = parse_protobuf(delimited(family))
    assert [(e.name, e.labels) for e in page.entries] == [("c_total", (("a", "b"),))]
    assert page.values == [2.5]
    assert page.families["c_total"].type == "counter"


def test_matches_the_text_page_of_the_same_metrics() -> None:
    histogram = MetricFamily(name="h", help="H.", type=4)
    point = histogram.metric.add()
    point.label.add(name="k", value="v")
    point.histogram.sample_count, point.histogram.sample_sum = 3, 1.5
    point.histogram.bucket.add(upper_bound=0.5, cumulative_count=1)
    point.histogram.bucket.add(upper_bound=1, cumulative_count=2)
    summary = MetricFamily(name="s", type=2)
    quantiles = summary.metric.add().summary
    quantiles.sample_count, quantiles.sample_sum = 2, 4.0
    quantiles.quantile.add(quantile=0.5, value=1.0)
    gauge = MetricFamily(name="g", type=1)
    gauge.metric.add(timestamp_ms=1000).gauge.value = 7
    page = parse_protobuf(delimited(*(m.SerializeToString() for m in (histogram, summary, gauge))))
    text = TextParser().parse(
        "# TYPE h histogram\n"
        'h_bucket{k="v",le="0.5"} 1\nh_bucket{k="v",le="1"} 2\nh_bucket{k="v",le="+Inf"} 3\n'
        'h_sum{k="v"} 1.5\nh_count{k="v"} 3\n'
        '# TYPE s summary\ns{quantile="0.5"} 1\ns_sum 4\ns_count 2\n'
        "# TYPE g gauge\ng 7 1000\n"
    )
    assert rows(page) == rows(text)
    assert page.timestamps == {len(page.entries) - 1: 1000}


def test_native_histograms_and_truncation_are_errors() -> None:
    native = MetricFamily(name="n", type=4)
    native.metric.add().histogram.schema = 3
    with pytest.raises(ExpositionError, match="message 1: n is a native histogram"):
        parse_protobuf(delimited(native.SerializeToString()))
    with pytest.raises(ExpositionError, match="message 1: message is cut short"):
        parse_protobuf(b"\x20\x0a")
