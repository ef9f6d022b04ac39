"""OTLP kinds -> Datadog series: exact values per type, counter resets, tags and host."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from metricgate.exporters.datadog.config import MetricsConfig
from metricgate.exporters.datadog.mapping import Mapper
from metricgate.exporters.datadog.tags import format_float
from metricgate.model import (
    INTERNER,
    Batch,
    BucketRange,
    ExponentialHistogramPoint,
    HistogramPoint,
    MetricKind,
    MetricPoints,
    PointValue,
    SummaryPoint,
    Temporality,
    sorted_attributes,
)

NOW = 1_700_000_000
S = 1_000_000_000
RESOURCE = INTERNER.intern_resource(
    sorted_attributes(
        {
            "host.name": "web-1",
            "service.name": "shop",
            "service.version": "1.2",
            "deployment.environment": "prod",
            "region": "eu",
        }
    )
)


def _mapper(**metrics: Any) -> Mapper:
    mapper = Mapper(MetricsConfig.model_validate(metrics), "fallback-host")
    mapper.started_ns = (NOW - 100) * S
    return mapper


def _batch(
    kind: MetricKind,
    points: list[tuple[PointValue, int, int]],
    temporality: Temporality = Temporality.UNSPECIFIED,
    monotonic: bool = False,
    name: str = "m.x",
    attributes: dict[str, Any] | None = None,
    resource: Any = RESOURCE,
) -> Batch:
    """Points given as (value, time s, start s) of one series."""
    scope = INTERNER.intern_scope("s")
    metric = INTERNER.intern_metric(resource, scope, name, "", kind, temporality, monotonic)
    series = INTERNER.intern_series(metric, sorted_attributes(attributes or {"code": "200"}))
    group = MetricPoints(metric)
    for value, ts, start in points:
        group.append(series, value, ts * S, start * S)
    return Batch([group])


def _run(mapper: Mapper, batch: Batch) -> list[dict[str, Any]]:
    return [json.loads(text) for text in mapper.map(batch, now_s=NOW)]


def _values(found: list[dict[str, Any]]) -> list[tuple[str, int, float]]:
    return [(s["metric"], s["type"], s["points"][0]["value"]) for s in found]


def test_gauge_with_tags_host_and_unified_service_tags() -> None:
    (series,) = _run(_mapper(), _batch(MetricKind.GAUGE, [(2.5, NOW, 0)]))
    assert series == {
        "metric": "m.x",
        "type": 3,
        "resources": [{"name": "web-1", "type": "host"}],
        "tags": ["code:200", "env:prod", "service:shop", "version:1.2"],
        "points": [{"timestamp": NOW, "value": 2.5}],
    }


def test_all_resource_attributes_as_tags_and_localhost_is_never_the_host() -> None:
    resource = INTERNER.intern_resource(sorted_attributes({"host.name": "localhost", "a": True}))
    batch = _batch(MetricKind.GAUGE, [(1.0, NOW, 0)], resource=resource, attributes={"e": ""})
    (series,) = _run(_mapper(resource_attributes_as_tags=True), batch)
    assert series["resources"] == [{"name": "fallback-host", "type": "host"}]
    assert series["tags"] == ["e:n/a", "a:true", "host.name:localhost"]


def test_non_finite_values_are_skipped_and_counted() -> None:
    mapper = _mapper()
    batch = _batch(MetricKind.GAUGE, [(math.nan, NOW, 0), (math.inf, NOW, 0), (1.0, NOW, 0)])
    assert _values(_run(mapper, batch)) == [("m.x", 3, 1.0)]
    assert mapper.take_dropped() == {"not_finite": 2}


def test_points_outside_the_intake_window_are_dropped() -> None:
    mapper = _mapper()
    batch = _batch(MetricKind.GAUGE, [(1.0, NOW - 3601, 0), (2.0, NOW + 601, 0), (3.0, NOW, 0)])
    assert _values(_run(mapper, batch)) == [("m.x", 3, 3.0)]
    assert mapper.take_dropped() == {"outside_time_window": 2}


def test_delta_sum_is_a_count_and_non_monotonic_cumulative_sum_a_gauge() -> None:
    mapper = _mapper()
    delta = _batch(MetricKind.SUM, [(4.0, NOW, NOW - 10)], Temporality.DELTA, True)
    updown = _batch(MetricKind.SUM, [(-3.0, NOW, NOW - 10)], Temporality.CUMULATIVE, False, "u")
    assert _values(_run(mapper, delta)) == [("m.x", 1, 4.0)]
    assert _values(_run(mapper, updown)) == [("u", 3, -3.0)]


def _counter(mapper: Mapper, value: float, ts: int, start: int, name: str = "c") -> list[Any]:
    batch = _batch(MetricKind.SUM, [(value, ts, start)], Temporality.CUMULATIVE, True, name)
    return _values(_run(mapper, batch))


@pytest.mark.parametrize(
    ("mode", "start", "first"),
    [
        ("auto", NOW - 200, []),  # started before the exporter: its total is history
        ("auto", NOW - 50, [("c", 1, 10.0)]),  # started after: all of it is new
        ("drop", NOW - 50, []),
        ("keep", NOW - 200, [("c", 1, 10.0)]),
    ],
)
def test_cumulative_counter_first_point_policy(mode: str, start: int, first: list[Any]) -> None:
    mapper = _mapper(sums={"initial_cumulative_monotonic_value": mode})
    assert _counter(mapper, 10.0, NOW - 30, start) == first
    assert _counter(mapper, 15.5, NOW - 20, start) == [("c", 1, 5.5)]
    assert _counter(mapper, 15.5, NOW - 10, start) == [("c", 1, 0.0)]


def test_cumulative_counter_resets_start_over() -> None:
    mapper = _mapper(sums={"initial_cumulative_monotonic_value": "auto"})
    start = NOW - 200
    assert _counter(mapper, 100.0, NOW - 40, start) == []
    assert _counter(mapper, 120.0, NOW - 30, start) == [("c", 1, 20.0)]
    # a lower value with a new start time after the exporter started: a restart, all new
    assert _counter(mapper, 7.0, NOW - 20, NOW - 25) == [("c", 1, 7.0)]
    assert _counter(mapper, 9.0, NOW - 10, NOW - 25) == [("c", 1, 2.0)]
    # a lower value with the same start is a reset too: a first point again, sent by auto
    assert _counter(mapper, 1.0, NOW - 5, NOW - 25) == [("c", 1, 1.0)]
    assert _counter(mapper, 3.0, NOW - 4, NOW - 25) == [("c", 1, 2.0)]


def test_out_of_order_cumulative_point_is_dropped() -> None:
    mapper = _mapper(sums={"initial_cumulative_monotonic_value": "keep"})
    assert _counter(mapper, 5.0, NOW - 10, NOW - 200) == [("c", 1, 5.0)]
    assert _counter(mapper, 4.0, NOW - 20, NOW - 200) == []
    assert mapper.take_dropped() == {"out_of_order": 1}


HISTOGRAM = HistogramPoint(6, 12.5, (0.5, 1.0), (1, 2, 3), 0.1, 7.0)


def test_delta_histogram_count_sum_min_max() -> None:
    batch = _batch(MetricKind.HISTOGRAM, [(HISTOGRAM, NOW, NOW - 10)], Temporality.DELTA)
    assert _values(_run(_mapper(), batch)) == [
        ("m.x.count", 1, 6.0),
        ("m.x.sum", 1, 12.5),
        ("m.x.min", 3, 0.1),
        ("m.x.max", 3, 7.0),
    ]


def test_cumulative_histogram_bucket_counters() -> None:
    mapper = _mapper(
        histograms={"mode": "counters", "send_aggregation_metrics": False},
        sums={"initial_cumulative_monotonic_value": "drop"},
    )
    later = HistogramPoint(9, 20.0, (0.5, 1.0), (1, 4, 4), 0.1, 7.0)
    first = _batch(MetricKind.HISTOGRAM, [(HISTOGRAM, NOW - 20, NOW - 200)], Temporality.CUMULATIVE)
    second = _batch(MetricKind.HISTOGRAM, [(later, NOW - 10, NOW - 200)], Temporality.CUMULATIVE)
    assert _run(mapper, first) == []
    found = _run(mapper, second)
    assert [(s["metric"], s["type"], s["points"][0]["value"], s["tags"][1:3]) for s in found] == [
        ("m.x.bucket", 1, 0.0, ["lower_bound:-inf", "upper_bound:0.5"]),
        ("m.x.bucket", 1, 2.0, ["lower_bound:0.5", "upper_bound:1"]),
        ("m.x.bucket", 1, 1.0, ["lower_bound:1", "upper_bound:inf"]),
    ]


def test_summary_count_sum_deltas_and_quantile_gauges() -> None:
    mapper = _mapper(sums={"initial_cumulative_monotonic_value": "keep"})
    first = SummaryPoint(4, 10.0, ((0.5, 2.0), (0.99, 4.0)))
    second = SummaryPoint(6, 13.0, ((0.5, 1.5), (0.99, math.nan)))
    _run(mapper, _batch(MetricKind.SUMMARY, [(first, NOW - 20, NOW - 200)]))
    found = _run(mapper, _batch(MetricKind.SUMMARY, [(second, NOW - 10, NOW - 200)]))
    assert _values(found) == [
        ("m.x.count", 1, 2.0),
        ("m.x.sum", 1, 3.0),
        ("m.x.quantile", 3, 1.5),
    ]
    assert found[2]["tags"][1] == "quantile:0.5"


@pytest.mark.parametrize(
    ("value", "text"),
    [(1.0, "1"), (0.5, "0.5"), (1e6, "1e+06"), (100000.0, "100000"), (1e-5, "1e-05"),
     (-2.5, "-2.5"), (math.inf, "inf"), (-math.inf, "-inf"), (0.0, "0")],
)  # fmt: skip
def test_bounds_format_like_go(value: float, text: str) -> None:
    assert format_float(value) == text


def test_exponential_histogram_count_and_sum_without_buckets() -> None:
    point = ExponentialHistogramPoint(
        5, 9.0, 2, 1, BucketRange(0, (2, 2)), BucketRange(0, ()), min=0.0, max=4.0
    )
    mapper = _mapper(histograms={"mode": "counters"})
    batch = _batch(MetricKind.EXPONENTIAL_HISTOGRAM, [(point, NOW, NOW - 10)], Temporality.DELTA)
    assert _values(_run(mapper, batch)) == [
        ("m.x.count", 1, 5.0),
        ("m.x.sum", 1, 9.0),
        ("m.x.min", 3, 0.0),
        ("m.x.max", 3, 4.0),
    ]
