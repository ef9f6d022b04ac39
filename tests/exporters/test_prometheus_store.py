"""The scrape page's store and text rendering: exact pages for every type and temporality."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from metricgate.model import (
    FLAG_NO_RECORDED_VALUE,
    INTERNER,
    Batch,
    BucketRange,
    ExponentialHistogramPoint,
    HistogramPoint,
    MetricKind,
    SummaryPoint,
    Temporality,
)
from tests.exporters.prometheus_points import batch, metric, page, points, resource, scope, store

GAUGE, SUM, HISTOGRAM = MetricKind.GAUGE, MetricKind.SUM, MetricKind.HISTOGRAM
DELTA, CUMULATIVE = Temporality.DELTA, Temporality.CUMULATIVE
BOUNDS = (0.1, 0.5, 1.0)


def _gauge() -> list[Batch]:
    m = metric("room.temperature", GAUGE, "Cel", description="Room temperature.")
    return [
        batch(points(m, ({"room": "a"}, 20.0), ({"room": "b"}, 21.5))),
        batch(points(m, ({"room": "a"}, 22.25))),
    ]


def _counter() -> list[Batch]:
    m = metric("http.requests", SUM, "{request}", CUMULATIVE, True, "Requests served.")
    return [batch(points(m, ({"code": 200}, 10.0))), batch(points(m, ({"code": 200}, 4.0)))]


def _updown() -> list[Batch]:
    m = metric("queue.size", SUM, "{item}", CUMULATIVE, False, "Items waiting.")
    return [batch(points(m, ({}, 7.0))), batch(points(m, ({}, -2.0)))]


def _delta_counter() -> list[Batch]:
    m = metric("jobs.done", SUM, "", DELTA, True, "Jobs done.")
    return [
        batch(points(m, ({"q": "x"}, 2.0), timestamp=10, start=5)),
        batch(points(m, ({"q": "x"}, 3.0), timestamp=20, start=10)),
        batch(points(m, ({"q": "x"}, 99.0), timestamp=15, start=5)),  # overlaps: not added
    ]


def _histogram() -> list[Batch]:
    m = metric("http.duration", HISTOGRAM, "s", CUMULATIVE, False, "Request time.")
    return [
        batch(points(m, ({}, HistogramPoint(3, 0.9, BOUNDS, (1, 1, 1, 0))))),
        batch(points(m, ({}, HistogramPoint(6, 2.5, BOUNDS, (1, 2, 3, 0))))),
    ]


def _delta_histogram() -> list[Batch]:
    m = metric("rpc.duration", HISTOGRAM, "s", DELTA, False, "RPC time.")
    return [
        batch(points(m, ({}, HistogramPoint(2, 0.3, BOUNDS, (1, 1, 0, 0))), timestamp=10)),
        batch(points(m, ({}, HistogramPoint(3, 2.5, BOUNDS, (0, 1, 1, 1))), timestamp=20)),
    ]


def _exponential() -> list[Batch]:
    m = metric("latency", MetricKind.EXPONENTIAL_HISTOGRAM, "s", CUMULATIVE, False, "Latency.")
    point = ExponentialHistogramPoint(
        count=6,
        sum=5.0,
        scale=0,
        zero_count=1,
        positive=BucketRange(0, (1, 3)),  # (1, 2] and (2, 4]
        negative=BucketRange(1, (1,)),  # [-4, -2)
    )
    return [batch(points(m, ({}, point)))]


def _summary() -> list[Batch]:
    m = metric("gc.pause", MetricKind.SUMMARY, "s", description="GC pauses.")
    point = SummaryPoint(10, 2.5, ((0.5, 0.2), (0.99, 0.9)))
    return [batch(points(m, ({}, point)))]


def _no_description_no_unit() -> list[Batch]:
    return [batch(points(metric("worker.busy"), ({}, 1.0)))]


PAGES: list[tuple[str, Callable[[], list[Batch]], str]] = [
    (
        "gauge: last value wins",
        _gauge,
        "# HELP room_temperature_celsius Room temperature.\n"
        "# TYPE room_temperature_celsius gauge\n"
        'room_temperature_celsius{job="svc",room="a"} 22.25\n'
        'room_temperature_celsius{job="svc",room="b"} 21.5\n',
    ),
    (
        "cumulative counter: taken as is, a decrease is a reset",
        _counter,
        "# HELP http_requests_total Requests served.\n"
        "# TYPE http_requests_total counter\n"
        'http_requests_total{code="200",job="svc"} 4\n',
    ),
    (
        "cumulative up-down sum: a gauge",
        _updown,
        '# HELP queue_size Items waiting.\n# TYPE queue_size gauge\nqueue_size{job="svc"} -2\n',
    ),
    (
        "delta counter: accumulated, overlapping interval ignored",
        _delta_counter,
        "# HELP jobs_done_total Jobs done.\n"
        "# TYPE jobs_done_total counter\n"
        'jobs_done_total{job="svc",q="x"} 5\n',
    ),
    (
        "cumulative histogram: last point",
        _histogram,
        "# HELP http_duration_seconds Request time.\n"
        "# TYPE http_duration_seconds histogram\n"
        'http_duration_seconds_bucket{job="svc",le="0.1"} 1\n'
        'http_duration_seconds_bucket{job="svc",le="0.5"} 3\n'
        'http_duration_seconds_bucket{job="svc",le="1"} 6\n'
        'http_duration_seconds_bucket{job="svc",le="+Inf"} 6\n'
        'http_duration_seconds_sum{job="svc"} 2.5\n'
        'http_duration_seconds_count{job="svc"} 6\n',
    ),
    (
        "delta histogram: bucket-wise sum",
        _delta_histogram,
        "# HELP rpc_duration_seconds RPC time.\n"
        "# TYPE rpc_duration_seconds histogram\n"
        'rpc_duration_seconds_bucket{job="svc",le="0.1"} 1\n'
        'rpc_duration_seconds_bucket{job="svc",le="0.5"} 3\n'
        'rpc_duration_seconds_bucket{job="svc",le="1"} 4\n'
        'rpc_duration_seconds_bucket{job="svc",le="+Inf"} 5\n'
        'rpc_duration_seconds_sum{job="svc"} 2.8\n'
        'rpc_duration_seconds_count{job="svc"} 5\n',
    ),
    (
        "exponential histogram: explicit buckets; no _sum with negative buckets",
        _exponential,
        "# HELP latency_seconds Latency.\n"
        "# TYPE latency_seconds histogram\n"
        'latency_seconds_bucket{job="svc",le="-2"} 1\n'
        'latency_seconds_bucket{job="svc",le="0"} 2\n'
        'latency_seconds_bucket{job="svc",le="2"} 3\n'
        'latency_seconds_bucket{job="svc",le="4"} 6\n'
        'latency_seconds_bucket{job="svc",le="+Inf"} 6\n'
        'latency_seconds_count{job="svc"} 6\n',
    ),
    (
        "summary: quantiles, sum, count",
        _summary,
        "# HELP gc_pause_seconds GC pauses.\n"
        "# TYPE gc_pause_seconds summary\n"
        'gc_pause_seconds{job="svc",quantile="0.5"} 0.2\n'
        'gc_pause_seconds{job="svc",quantile="0.99"} 0.9\n'
        'gc_pause_seconds_sum{job="svc"} 2.5\n'
        'gc_pause_seconds_count{job="svc"} 10\n',
    ),
    (
        "no description: the OTLP name is the HELP",
        _no_description_no_unit,
        '# HELP worker_busy worker.busy\n# TYPE worker_busy gauge\nworker_busy{job="svc"} 1\n',
    ),
]


@pytest.mark.parametrize(
    ("build", "expected"), [(b, e) for _, b, e in PAGES], ids=[i for i, _, _ in PAGES]
)
def test_page(build: Callable[[], list[Batch]], expected: str) -> None:
    s = store()
    for i, b in enumerate(build()):
        s.ingest(b, float(i))
    assert page(s) == expected


def test_delta_up_down_sum_is_dropped_with_a_reason() -> None:
    s = store()
    m = metric("pool.in_use", SUM, "", DELTA, False)
    drops = s.ingest(batch(points(m, ({}, 1.0), ({"a": "b"}, 2.0))), 0.0)
    assert drops == {"delta_non_monotonic_sum": 2}
    assert page(s) == ""


def test_delta_histogram_restarts_when_bounds_change() -> None:
    s = store()
    m = metric("rpc.duration", HISTOGRAM, "s", DELTA, False)
    s.ingest(batch(points(m, ({}, HistogramPoint(2, 1.0, BOUNDS, (1, 1, 0, 0))))), 0.0)
    s.ingest(batch(points(m, ({}, HistogramPoint(1, 7.0, (5.0,), (0, 1))))), 1.0)
    assert 'le="5"} 0\n' in page(s)
    assert 'rpc_duration_seconds_count{job="svc"} 1\n' in page(s)


def test_delta_exponential_histograms_accumulate_across_scales() -> None:
    s = store()
    m = metric("size", MetricKind.EXPONENTIAL_HISTOGRAM, "By", DELTA, False)
    first = ExponentialHistogramPoint(2, 3.0, 1, 0, BucketRange(0, (1, 1)), BucketRange(0, ()))
    second = ExponentialHistogramPoint(1, 3.0, 0, 0, BucketRange(1, (1,)), BucketRange(0, ()))
    s.ingest(batch(points(m, ({}, first), timestamp=10)), 0.0)
    s.ingest(batch(points(m, ({}, second), timestamp=20)), 1.0)
    text = page(s)
    # scale 1 buckets 0 and 1 are (1, 1.41] and (1.41, 2]: scale-0 bucket 0, (1, 2].
    assert 'size_bytes_bucket{job="svc",le="2"} 2\n' in text
    assert 'size_bytes_bucket{job="svc",le="4"} 3\n' in text
    assert 'size_bytes_count{job="svc"} 3\n' in text


def test_exponential_histograms_can_be_dropped() -> None:
    s = store(exponential="drop")
    drops = s.ingest(_exponential()[0], 0.0)
    assert drops == {"exponential_histogram": 1}
    assert page(s) == ""


def test_no_recorded_value_removes_the_series() -> None:
    s = store()
    m = metric("temp", GAUGE)
    s.ingest(batch(points(m, ({"a": "1"}, 1.0), ({"a": "2"}, 2.0))), 0.0)
    s.ingest(batch(points(m, ({"a": "1"}, math.nan), flags=FLAG_NO_RECORDED_VALUE)), 1.0)
    assert page(s) == '# HELP temp temp\n# TYPE temp gauge\ntemp{a="2",job="svc"} 2\n'
    s.ingest(batch(points(m, ({"a": "2"}, math.nan), flags=FLAG_NO_RECORDED_VALUE)), 1.0)
    assert page(s) == ""
    assert len(s) == 0


def test_expire_removes_stale_series_and_their_target_info() -> None:
    s = store()
    host = resource({"service.name": "svc", "host.name": "h1"})
    m = metric("temp", GAUGE, res=host)
    s.ingest(batch(points(m, ({"a": "old"}, 1.0))), 10.0)
    s.ingest(batch(points(m, ({"a": "new"}, 2.0))), 20.0)
    assert s.expire(15.0) == 1
    text = page(s)
    assert 'temp{a="new",job="svc"} 2' in text and "old" not in text
    assert 'target_info{host_name="h1",job="svc"} 1' in text
    assert s.expire(25.0) == 1
    assert page(s) == ""


def test_target_info_once_per_job_and_instance() -> None:
    s = store()
    r = resource({"service.name": "api", "service.instance.id": "i-1", "k8s.pod.name": "p"})
    s.ingest(batch(points(metric("a", res=r), ({}, 1.0)), points(metric("b", res=r), ({}, 2.0))), 0)
    text = page(s)
    assert text.count("target_info{") == 1
    assert (
        "# HELP target_info Target metadata\n# TYPE target_info gauge\n"
        'target_info{instance="i-1",job="api",k8s_pod_name="p"} 1\n'
    ) in text


def test_type_conflict_keeps_the_first_type() -> None:
    s = store()
    s.ingest(batch(points(metric("jobs", GAUGE), ({}, 1.0))), 0.0)
    other = metric("jobs", SUM, "", CUMULATIVE, False, "same name, up-down sum")  # also a gauge
    counter = metric("jobs", HISTOGRAM, "", CUMULATIVE, False)
    drops = s.ingest(batch(points(counter, ({}, HistogramPoint(1, 1.0, (), ())))), 1.0)
    assert drops == {"type_conflict": 1}
    assert s.ingest(batch(points(other, ({"x": "y"}, 5.0))), 1.0) == {}
    assert page(s) == (
        '# HELP jobs jobs\n# TYPE jobs gauge\njobs{job="svc"} 1\njobs{job="svc",x="y"} 5\n'
    )


def test_series_with_the_same_labels_are_deduplicated() -> None:
    s = store()
    m = metric("temp", GAUGE)
    # An int and a string attribute value both become the label value "1".
    drops = s.ingest(batch(points(m, ({"a": 1}, 1.0), ({"a": "1"}, 2.0))), 0.0)
    assert drops == {"duplicate_series": 1}
    assert page(s).count("temp{") == 1


def test_no_path_puts_a_label_set_on_the_page_twice() -> None:
    """Two resources with one job/instance, keys that sanitise alike: the first series keeps
    the label set, the later ones are dropped and counted; one `target_info` per target."""
    s = store()
    first = resource({"service.name": "api", "service.instance.id": "1", "host.name": "a"})
    second = resource({"service.name": "api", "service.instance.id": "1", "host.name": "b"})
    drops = s.ingest(
        batch(
            points(metric("temp", GAUGE, res=first), ({"a.b": "x"}, 1.0)),
            points(metric("temp", GAUGE, res=second), ({"a.b": "x"}, 2.0), ({"a_b": "x"}, 3.0)),
        ),
        0.0,
    )
    assert drops == {"duplicate_series": 2}
    text = page(s)
    assert text.count('temp{a_b="x",instance="1",job="api"}') == 1
    assert 'temp{a_b="x",instance="1",job="api"} 1\n' in text
    assert text.count("target_info{") == 1


def test_invalid_metric_name_is_dropped_with_a_reason() -> None:
    s = store()
    drops = s.ingest(batch(points(metric("@_#_$"), ({}, 1.0))), 0.0)
    assert drops == {"invalid_metric_name": 1}


def test_normalize_units_scales_values_and_renames() -> None:
    s = store(normalize_units=True)
    gauge = metric("op.time", GAUGE, "ms")
    hist = metric("op.size", HISTOGRAM, "KiBy", CUMULATIVE, False)
    s.ingest(
        batch(
            points(gauge, ({}, 250.0)),
            points(hist, ({}, HistogramPoint(2, 3.0, (1.0, 2.0), (1, 1, 0)))),
        ),
        0.0,
    )
    text = page(s)
    assert 'op_time_seconds{job="svc"} 0.25\n' in text
    assert 'op_size_bytes_bucket{job="svc",le="1024"} 1\n' in text
    assert 'op_size_bytes_sum{job="svc"} 3072\n' in text


def test_non_finite_values_render_as_prometheus_spells_them() -> None:
    s = store()
    m = metric("v", GAUGE)
    s.ingest(
        batch(points(m, ({"a": "1"}, math.inf), ({"a": "2"}, -math.inf), ({"a": "3"}, math.nan))), 0
    )
    text = page(s)
    assert 'v{a="1",job="svc"} +Inf\n' in text
    assert 'v{a="2",job="svc"} -Inf\n' in text
    assert 'v{a="3",job="svc"} NaN\n' in text


def test_timestamps_in_milliseconds_when_asked() -> None:
    s = store(keep_timestamps=True)
    s.ingest(batch(points(metric("v", GAUGE), ({}, 1.0), timestamp=1_700_000_000_123_456_789)), 0)
    assert 'v{job="svc"} 1 1700000000123\n' in page(s, timestamps=True)
    assert 'v{job="svc"} 1\n' in page(s)


def test_normalized_exponential_histograms_are_scaled_once_converted() -> None:
    s = store(normalize_units=True)
    m = metric("wait", MetricKind.EXPONENTIAL_HISTOGRAM, "ms", CUMULATIVE, False)
    point = ExponentialHistogramPoint(3, 5000.0, 0, 0, BucketRange(10, (1, 2)), BucketRange(0, ()))
    s.ingest(batch(points(m, ({}, point))), 0.0)
    text = page(s)
    # Buckets (1024, 2048] and (2048, 4096] ms.
    assert 'wait_seconds_bucket{job="svc",le="2.048"} 1\n' in text
    assert 'wait_seconds_bucket{job="svc",le="4.096"} 3\n' in text
    assert 'wait_seconds_sum{job="svc"} 5\n' in text


def test_native_prometheus_series_keep_their_name_and_labels() -> None:
    s = store()
    host = resource({"service.name": "svc", "host.name": "h1"})
    m = INTERNER.intern_metric(
        host, scope(), "node_load1", "", GAUGE, native_prometheus=True, description="Load."
    )
    s.ingest(batch(points(m, ({"job": "node", "instance": "h:9100"}, 0.5))), 0.0)
    assert page(s) == (
        "# HELP node_load1 Load.\n# TYPE node_load1 gauge\n"
        'node_load1{instance="h:9100",job="node"} 0.5\n'
    )


def test_a_counter_whose_openmetrics_family_clashes_is_dropped() -> None:
    s = store()
    s.ingest(batch(points(metric("jobs", GAUGE), ({}, 1.0))), 0.0)
    counter = metric("jobs", SUM, "", CUMULATIVE, True)  # jobs_total: OpenMetrics family `jobs`
    assert s.ingest(batch(points(counter, ({}, 2.0))), 1.0) == {"name_conflict": 1}
    histogram = metric("jobs.count", HISTOGRAM, "", CUMULATIVE, False)
    hist_point = HistogramPoint(1, 1.0, (), ())
    assert s.ingest(batch(points(histogram, ({}, hist_point))), 1.0) == {}
    gauge = metric("jobs.count.count", GAUGE)  # jobs_count_count: a sample of `jobs_count`
    assert s.ingest(batch(points(gauge, ({}, 2.0))), 1.0) == {"name_conflict": 1}


def test_relabelled_series_keep_their_target_info_while_job_and_instance_are_unchanged() -> None:
    s = store()
    host = resource({"service.name": "svc", "service.instance.id": "i1", "host.name": "h1"})
    m = INTERNER.intern_metric(host, scope(), "up_total", "", GAUGE, native_prometheus=True)
    s.ingest(batch(points(m, ({"job": "svc", "instance": "i1", "a": "b"}, 1.0))), 0.0)
    text = page(s)
    assert 'target_info{host_name="h1",instance="i1",job="svc"} 1' in text
    renamed = INTERNER.intern_metric(host, scope(), "other", "", GAUGE, native_prometheus=True)
    s2 = store()
    s2.ingest(batch(points(renamed, ({"job": "relabelled", "instance": "i1"}, 1.0))), 0.0)
    assert "target_info" not in page(s2)
