"""The cloudwatch exporter's mapping and request builder: every CloudWatch limit, without a server.

moto enforces almost none of PutMetricData's limits, so they are checked here on what the
exporter would send.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import pytest

from metricgate.exporters.cloudwatch import CloudWatchExporterConfig, Mapper
from metricgate.exporters.cloudwatch import requests as rq
from metricgate.exporters.cloudwatch.units import cloudwatch_unit
from metricgate.model import (
    INTERNER,
    Batch,
    HistogramPoint,
    MetricKind,
    MetricPoints,
    PointValue,
    SummaryPoint,
    Temporality,
    sorted_attributes,
)

RESOURCE = INTERNER.intern_resource(sorted_attributes({"service.name": "svc"}))
SCOPE = INTERNER.intern_scope("cw")
S = 1_000_000_000


def _config(**extra: Any) -> CloudWatchExporterConfig:
    return CloudWatchExporterConfig.model_validate({"namespace": "T", **extra})


def _batch(
    name: str,
    kind: MetricKind,
    points: Sequence[tuple[dict[str, Any], PointValue, int, int]],
    temporality: Temporality = Temporality.UNSPECIFIED,
    unit: str = "",
) -> Batch:
    metric = INTERNER.intern_metric(RESOURCE, SCOPE, name, unit, kind, temporality, True)
    group = MetricPoints(metric)
    for attributes, value, ts, start in points:
        series = INTERNER.intern_series(metric, sorted_attributes(attributes))
        group.append(series, value, ts, start)
    return Batch([group])


def test_1001_metrics_make_two_requests() -> None:
    now = time.time_ns()
    batch = _batch("g", MetricKind.GAUGE, [({"i": str(i)}, float(i), now, 0) for i in range(1001)])
    data = Mapper(_config()).map(batch)
    built = rq.build(data, "T")
    assert [len(r) for r in built.requests] == [1000, 1]
    assert [len(r) for r in rq.build(data, "T", max_metrics=20).requests][-1] == 1


def test_requests_stay_under_the_byte_limit() -> None:
    now = time.time_ns()
    wide = {f"k{j:02d}": "v" * 1000 for j in range(30)}
    points = [({**wide, "i": str(i)}, 1.0, now, 0) for i in range(60)]
    data = Mapper(_config()).map(_batch("g", MetricKind.GAUGE, points))
    built = rq.build(data, "T")
    assert len(built.requests) > 1
    assert sum(len(r) for r in built.requests) == 60
    for request in built.requests:
        size = sum(rq.datum_size(d) + 1 for d in request)
        assert size < rq.MAX_BYTES
    assert rq.build(data[:1], "T", max_bytes=100).oversized == 1


def test_31_dimensions_keep_the_first_30_by_name_and_are_counted() -> None:
    mapper = Mapper(_config())
    attributes = {f"d{j:02d}": "x" for j in range(31)}
    data = mapper.map(_batch("g", MetricKind.GAUGE, [(attributes, 1.0, time.time_ns(), 0)]))
    names = [d["Name"] for d in data[0]["Dimensions"]]
    assert names == [f"d{j:02d}" for j in range(30)]
    assert mapper.take_dropped() == {"dimensions_over_30": 1}


def test_long_dimension_names_and_values_are_truncated_and_empty_values_left_out() -> None:
    mapper = Mapper(_config())
    attributes = {"n" * 300: "v", "k": "w" * 2000, "empty": ""}
    data = mapper.map(_batch("g", MetricKind.GAUGE, [(attributes, 1.0, time.time_ns(), 0)]))
    dims = {d["Name"]: d["Value"] for d in data[0]["Dimensions"]}
    assert dims == {"k": "w" * 1024, "n" * 255: "v"}
    assert mapper.take_dropped() == {"dimension_truncated": 1, "dimension_empty": 1}


def test_151_values_are_split_into_two_data() -> None:
    datum = {"MetricName": "m", "Values": [float(i) for i in range(151)], "Counts": [1.0] * 151}
    parts = rq.split_values(datum)
    assert [len(p["Values"]) for p in parts] == [150, 1]
    assert [len(p["Counts"]) for p in parts] == [150, 1]
    assert rq.build([datum], "T").requests == [parts]


def test_nan_inf_and_out_of_window_points_are_dropped_and_counted() -> None:
    now = time.time_ns()
    points = [
        ({"a": "1"}, math.nan, now, 0),
        ({"a": "2"}, math.inf, now, 0),
        ({"a": "3"}, -math.inf, now, 0),
        ({"a": "4"}, 1.0, now - 15 * 86400 * S, 0),
        ({"a": "5"}, 1.0, now + 3 * 3600 * S, 0),
        ({"a": "6"}, 2.0**400, now, 0),
        ({"a": "7"}, 7.0, now, 0),
    ]
    mapper = Mapper(_config())
    data = mapper.map(_batch("g", MetricKind.GAUGE, points))
    assert [d["Value"] for d in data] == [7.0]
    assert mapper.take_dropped() == {"not_finite": 4, "outside_time_window": 2}


def test_cumulative_first_point_kept_when_start_known_and_resets() -> None:
    mapper = Mapper(_config())
    t0 = time.time_ns() - 60 * S

    def one(value: float, ts: int, start: int) -> list[float]:
        batch = _batch("c", MetricKind.SUM, [({}, value, ts, start)], Temporality.CUMULATIVE)
        return [d["Value"] for d in mapper.map(batch)]

    assert one(5.0, t0 + S, t0) == [5.0]
    assert one(8.0, t0 + 2 * S, t0) == [3.0]
    assert one(2.0, t0 + 3 * S, t0 + 3 * S - 1) == [2.0]  # reset with a new start
    assert one(1.0, t0 + 4 * S, t0 + 3 * S - 1) == [1.0]  # a drop is a reset too
    assert one(9.0, t0 + 3 * S, t0 + 3 * S - 1) == []  # older than the last point
    assert mapper.take_dropped() == {"out_of_order": 1}
    # without a start time the first point only sets the baseline
    other = Mapper(_config())
    batch = _batch("c2", MetricKind.SUM, [({}, 4.0, t0, 0)], Temporality.CUMULATIVE)
    assert other.map(batch) == []


def test_histogram_statistics_from_buckets_when_min_max_unknown() -> None:
    now = time.time_ns()
    point = HistogramPoint(4, 10.0, (1.0, 5.0, 10.0), (0, 3, 1, 0))
    data = Mapper(_config()).map(
        _batch("h", MetricKind.HISTOGRAM, [({}, point, now, 0)], Temporality.DELTA, "ms")
    )
    assert data[0]["StatisticValues"] == {
        "SampleCount": 4.0,
        "Sum": 10.0,
        "Minimum": 1.0,
        "Maximum": 10.0,
    }
    assert data[0]["Unit"] == "Milliseconds"


def test_summary_statistics_use_quantiles_0_and_1() -> None:
    now = time.time_ns()
    mapper = Mapper(_config())
    point = SummaryPoint(4, 8.0, ((0.0, 0.5), (0.5, 2.0), (1.0, 6.0)))
    data = mapper.map(_batch("s", MetricKind.SUMMARY, [({}, point, now, now - S)]))
    assert data[0]["StatisticValues"] == {
        "SampleCount": 4.0,
        "Sum": 8.0,
        "Minimum": 0.5,
        "Maximum": 6.0,
    }


def test_rollups_and_declarations() -> None:
    now = time.time_ns()
    attributes = {"a": "1", "b": "2"}
    batch = _batch("http_requests", MetricKind.GAUGE, [(attributes, 1.0, now, 0)])
    rolled = Mapper(_config(dimension_rollup_option="ZeroAndSingleDimensionRollup")).map(batch)
    sets = [[(d["Name"], d["Value"]) for d in x["Dimensions"]] for x in rolled]
    assert sets == [[("a", "1"), ("b", "2")], [], [("a", "1")], [("b", "2")]]
    declared = _config(
        metric_declarations=[
            {"dimensions": [["b"], ["a", "c"]], "metric_name_selectors": ["^http_"]}
        ],
        resource_to_dimensions=["service.name"],
    )
    data = Mapper(declared).map(batch)
    assert [[d["Name"] for d in x["Dimensions"]] for x in data] == [["b"]]
    other = _batch("db_calls", MetricKind.GAUGE, [(attributes, 1.0, now, 0)])
    assert Mapper(declared).map(other) == []
    with_resource = Mapper(_config(resource_to_dimensions=["service.name"])).map(batch)
    assert {d["Name"] for d in with_resource[0]["Dimensions"]} == {"a", "b", "service.name"}


@pytest.mark.parametrize(
    ("unit", "expected"),
    [
        ("s", "Seconds"),
        ("ms", "Milliseconds"),
        ("us", "Microseconds"),
        ("By", "Bytes"),
        ("KiBy", "None"),
        ("KBy", "Kilobytes"),
        ("1", "None"),
        ("%", "Percent"),
        ("{request}", "Count"),
        ("By/s", "Bytes/Second"),
        ("ns", "None"),
    ],
)
def test_units(unit: str, expected: str) -> None:
    assert cloudwatch_unit(unit) == expected


def test_config() -> None:
    config = _config()
    assert config.mode == "put_metric_data"
    assert config.dimension_rollup_option == "NoDimensionRollup"
    assert config.storage_resolution == 60 and config.max_metrics_per_request == 1000
    with pytest.raises(ValueError, match="namespace"):
        CloudWatchExporterConfig.model_validate({})
    with pytest.raises(ValueError, match="log_group_name"):
        _config(mode="emf")
    with pytest.raises(ValueError, match="regular expression"):
        _config(metric_declarations=[{"dimensions": [["a"]], "metric_name_selectors": ["("]}])
    with pytest.raises(ValueError, match="max_metrics_per_request"):
        _config(max_metrics_per_request=1001)
