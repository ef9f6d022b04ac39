"""Page rendering: OpenMetrics specifics, exemplars, promtool, and parsing arbitrary input."""

from __future__ import annotations

import math
import subprocess

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as parse_text

from metricgate.exporters.prometheus import render as render_module
from metricgate.exporters.prometheus.render import render
from metricgate.model import (
    FLAG_NO_RECORDED_VALUE,
    BucketRange,
    Exemplar,
    ExponentialHistogramPoint,
    HistogramPoint,
    MetricKind,
    SummaryPoint,
    Temporality,
)
from metricgate.translate import LABEL_NAME_RE, METRIC_NAME_RE
from tests.exporters.prometheus_points import (
    T0,
    batch,
    exponential_point,
    metric,
    page,
    points,
    resource,
    store,
)
from tests.support.binaries import require_binary

SUM, HISTOGRAM, GAUGE = MetricKind.SUM, MetricKind.HISTOGRAM, MetricKind.GAUGE
CUMULATIVE, DELTA = Temporality.CUMULATIVE, Temporality.DELTA
TRACE, SPAN = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"


def _exemplar(value: float, **attributes: str) -> Exemplar:
    return Exemplar(value, T0, TRACE, SPAN, tuple(sorted(attributes.items())))


def _small_store() -> object:
    s = store(keep_timestamps=True)
    res = resource({"service.name": "api", "host.name": "h1"})
    counter = metric("http.requests", SUM, "{request}", CUMULATIVE, True, "Requests.", res=res)
    hist = metric("http.duration", HISTOGRAM, "s", CUMULATIVE, False, "Time.", res=res)
    gauge = metric("memory.used", GAUGE, "By", description="Memory.", res=res)
    s.ingest(
        batch(
            points(counter, ({}, 7.0), exemplars={0: (_exemplar(1.0), _exemplar(3.0))}),
            points(
                hist,
                ({}, HistogramPoint(3, 0.7, (0.1, 0.5), (1, 1, 1))),
                exemplars={0: (_exemplar(0.3), _exemplar(0.2), _exemplar(9.0))},
            ),
            points(gauge, ({}, 1024.0)),
        ),
        0.0,
    )
    return s


def test_openmetrics_page() -> None:
    stamp = " 1700000000.000"
    ex = f'# {{trace_id="{TRACE}",span_id="{SPAN}"}}'
    assert page(_small_store(), openmetrics=True, timestamps=True) == (  # type: ignore[arg-type]
        "# TYPE http_duration_seconds histogram\n"
        "# UNIT http_duration_seconds seconds\n"
        "# HELP http_duration_seconds Time.\n"
        f'http_duration_seconds_bucket{{job="api",le="0.1"}} 1{stamp}\n'
        f'http_duration_seconds_bucket{{job="api",le="0.5"}} 2{stamp} {ex} 0.3{stamp}\n'
        f'http_duration_seconds_bucket{{job="api",le="+Inf"}} 3{stamp} {ex} 9{stamp}\n'
        f'http_duration_seconds_sum{{job="api"}} 0.7{stamp}\n'
        f'http_duration_seconds_count{{job="api"}} 3{stamp}\n'
        "# TYPE http_requests counter\n"
        "# HELP http_requests Requests.\n"
        f'http_requests_total{{job="api"}} 7{stamp} {ex} 3{stamp}\n'
        "# TYPE memory_used_bytes gauge\n"
        "# UNIT memory_used_bytes bytes\n"
        "# HELP memory_used_bytes Memory.\n"
        f'memory_used_bytes{{job="api"}} 1024{stamp}\n'
        "# TYPE target_info gauge\n"
        "# HELP target_info Target metadata\n"
        'target_info{host_name="h1",job="api"} 1\n'
        "# EOF\n"
    )


def test_text_page_has_no_exemplars_and_no_eof() -> None:
    text = page(_small_store())  # type: ignore[arg-type]
    assert "trace_id" not in text and "# EOF" not in text
    assert 'http_requests_total{job="api"} 7\n' in text
    assert "# TYPE target_info gauge\n" in text


def test_exemplar_labels_stay_within_128_runes() -> None:
    s = store()
    m = metric("c", SUM, "", CUMULATIVE, True)
    exemplar = _exemplar(1.0, small="x", huge="é" * 100, other="y" * 20)
    s.ingest(batch(points(m, ({}, 1.0), exemplars={0: (exemplar,)})), 0.0)
    line = next(x for x in page(s, openmetrics=True).splitlines() if x.startswith("c_total"))
    labels = line.split(" # ")[1].split("}")[0]
    assert "huge" not in labels and 'small="x"' in labels and "other" in labels
    assert len(TRACE) + len(SPAN) + len("trace_idspan_idsmallxother") + 20 <= 128


def test_counter_without_total_is_unknown_in_openmetrics() -> None:
    s = store(add_unit_suffixes=False)
    s.ingest(batch(points(metric("jobs", SUM, "", CUMULATIVE, True), ({}, 1.0))), 0.0)
    assert page(s, openmetrics=True).startswith("# TYPE jobs unknown\n# HELP jobs jobs\njobs{")


def test_big_families_are_rendered_in_chunks(monkeypatch: object) -> None:
    monkeypatch.setattr(render_module, "CHUNK_LINES", 16)  # type: ignore[attr-defined]
    s = store()
    rows = [({"i": str(i)}, float(i)) for i in range(100)]
    hist_rows = [({"i": str(i)}, HistogramPoint(1, 1.0, (1.0,), (1, 0))) for i in range(40)]
    s.ingest(
        batch(
            points(metric("g"), *rows),
            points(metric("h", HISTOGRAM, "", CUMULATIVE, False), *hist_rows),
        ),
        0.0,
    )
    chunks = list(render(s))
    assert len(chunks) > 10
    families = list(parse_text("".join(chunks)))
    assert [len(f.samples) for f in families] == [100, 160]


def _rich_store(**options: object) -> object:
    res = resource(
        {"service.name": "api", "service.namespace": "shop", "service.instance.id": "i-1"}
        | {"host.name": "h1", "process.pid": 7}
    )
    s = store(enable_scope_labels=True, **options)
    exemplar = (_exemplar(0.3),)
    s.ingest(
        batch(
            points(
                metric(
                    "http.server.requests", SUM, "{request}", CUMULATIVE, True, "Reqs.", res=res
                ),
                ({"http.method": "GET", "code": 200}, 10.0),
                exemplars={0: exemplar},
            ),
            points(
                metric("http.server.duration", HISTOGRAM, "ms", DELTA, False, "Time.", res=res),
                ({"http.method": "GET"}, HistogramPoint(3, 0.9, (0.1, 0.5, 1.0), (1, 1, 1, 0))),
                exemplars={0: exemplar},
            ),
            points(
                metric("queue.size", SUM, "{item}", CUMULATIVE, False, "Q.", res=res), ({}, 3.0)
            ),
            points(metric("memory.usage", GAUGE, "By", description="Mem.", res=res), ({}, 1e9)),
            points(metric("cpu.utilization", GAUGE, "1", description="CPU.", res=res), ({}, 0.5)),
            points(
                metric(
                    "payload",
                    MetricKind.EXPONENTIAL_HISTOGRAM,
                    "By",
                    CUMULATIVE,
                    False,
                    "P.",
                    res=res,
                ),
                (
                    {},
                    ExponentialHistogramPoint(
                        5, 9.0, 2, 1, BucketRange(3, (1, 2, 1)), BucketRange(0, ())
                    ),
                ),
            ),
            points(
                metric("gc.pause", MetricKind.SUMMARY, "s", description="GC.", res=res),
                ({}, SummaryPoint(4, 1.0, ((0.5, 0.1), (0.9, 0.5)))),
            ),
        ),
        0.0,
    )
    return s


def _promtool(text: str) -> subprocess.CompletedProcess[str]:
    promtool = require_binary("promtool")
    return subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )


def test_promtool_accepts_a_page_of_every_type() -> None:
    result = _promtool(page(_rich_store()))  # type: ignore[arg-type]
    # The one remaining lint is the specification's own name for a histogram in `ms`:
    # `http_server_duration_milliseconds`. It is what every OpenTelemetry exporter produces, so
    # it stays the default; `normalize_units: true` gives base units (checked below).
    lints = (result.stdout + result.stderr).strip().splitlines()
    assert result.returncode == 3, lints
    assert lints == [
        'http_server_duration_milliseconds use base unit "seconds" instead of "milliseconds"'
    ]
    normalized = _promtool(page(_rich_store(normalize_units=True)))  # type: ignore[arg-type]
    assert normalized.returncode == 0, normalized.stdout + normalized.stderr


def test_openmetrics_page_of_every_type_parses() -> None:
    text = page(_rich_store(), openmetrics=True, timestamps=True)  # type: ignore[arg-type]
    families = {f.name: f for f in parse_openmetrics(text)}
    assert families["http_server_requests"].type == "counter"
    assert families["target_info"].type == "gauge"
    assert families["payload_bytes"].unit == "bytes"
    exemplars = [s.exemplar for f in families.values() for s in f.samples if s.exemplar]
    assert len(exemplars) == 2


utf8_text = st.text(min_size=0, max_size=20)
values = st.floats(allow_nan=True, allow_infinity=True)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=utf8_text,
    unit=st.sampled_from(["", "ms", "By", "1", "{x}", "km/h", "é/s"]),
    rows=st.lists(st.tuples(st.dictionaries(utf8_text, utf8_text, max_size=4), values), max_size=4),
    resource_attributes=st.dictionaries(utf8_text, utf8_text, max_size=3),
)
def test_any_input_renders_a_parseable_page(
    name: str,
    unit: str,
    rows: list[tuple[dict[str, str], float]],
    resource_attributes: dict[str, str],
) -> None:
    s = store(enable_scope_labels=True, resource_attributes=list(resource_attributes))
    res = resource(resource_attributes)
    s.ingest(
        batch(
            points(metric(name, GAUGE, unit, res=res), *rows),
            points(metric(name, SUM, unit, CUMULATIVE, True, name, res=res), *rows),
        ),
        0.0,
    )
    expected = {v for _, v in rows if not math.isnan(v)}
    for text, parse in ((page(s), parse_text), (page(s, openmetrics=True), parse_openmetrics)):
        for family in parse(text):
            for sample in family.samples:
                assert METRIC_NAME_RE.match(sample.name), sample.name
                assert all(LABEL_NAME_RE.match(label) for label in sample.labels), sample
                if family.name != "target_info" and not math.isnan(sample.value):
                    assert sample.value in expected


def test_counters_refuse_nan_and_negative_values_but_honour_staleness() -> None:
    s = store()
    m = metric("c", SUM, "", CUMULATIVE, True)
    drops = s.ingest(batch(points(m, ({"a": "1"}, -1.0), ({"a": "2"}, math.nan), ({}, 1.0))), 0)
    assert drops == {"invalid_counter_value": 2}
    s.ingest(batch(points(m, ({}, math.nan), flags=FLAG_NO_RECORDED_VALUE)), 1.0)
    assert page(s) == ""


@settings(max_examples=100, deadline=None)
@given(
    values=st.lists(
        st.floats(min_value=-1e6, max_value=1e6, allow_nan=False).filter(lambda v: v != 0),
        min_size=1,
        max_size=30,
    ),
    scale=st.integers(min_value=-2, max_value=8),
)
def test_exponential_histograms_render_valid_histograms(values: list[float], scale: int) -> None:
    s = store()
    m = metric("h", MetricKind.EXPONENTIAL_HISTOGRAM, "s", CUMULATIVE, False)
    s.ingest(batch(points(m, ({}, exponential_point(values, scale)))), 0.0)
    (family,) = parse_openmetrics(page(s, openmetrics=True))
    buckets = [x for x in family.samples if x.name.endswith("_bucket")]
    assert buckets[-1].labels["le"] == "+Inf" and buckets[-1].value == len(values)
    assert len(buckets) <= 161
    assert [x.value for x in buckets] == sorted(x.value for x in buckets)
    (text_family,) = parse_text(page(s))
    assert [x for x in text_family.samples if x.name.endswith("_bucket")] == buckets
    assert text_family.samples[-1].name == "h_seconds_count"  # kept in the text format


def _bounds_store() -> object:
    s = store()
    hist = metric("upload.size", HISTOGRAM, "By", CUMULATIVE, False, "Sizes.")
    summary = metric("rpc.duration", MetricKind.SUMMARY, "s", description="RPC.")
    repeated = metric("repeated", HISTOGRAM, "s", CUMULATIVE, False, "Repeated bounds.")
    s.ingest(
        batch(
            points(hist, ({}, HistogramPoint(8, 9.0, (2.5e-05, 0.005, 1.0, 10.0, 1e6), (1,) * 6))),
            points(summary, ({}, SummaryPoint(4, 3.0, ((0.5, 0.1), (0.5, 0.2), (0.9, 0.7))))),
            points(repeated, ({}, HistogramPoint(6, 6.0, (1.0, 1.0, 2.0), (1, 2, 3, 0)))),
        ),
        0.0,
    )
    return s


def test_bounds_and_quantiles_are_spelled_as_go_writes_them_in_both_formats() -> None:
    s = _bounds_store()
    for text in (page(s), page(s, openmetrics=True)):  # type: ignore[arg-type]
        les = [
            line.split('le="')[1].split('"')[0]
            for line in text.splitlines()
            if "upload" in line and 'le="' in line
        ]
        assert les == ["2.5e-05", "0.005", "1", "10", "1e+06", "+Inf"]
        assert 'rpc_duration_seconds{job="svc",quantile="0.9"} 0.7\n' in text


def test_a_repeated_bound_or_quantile_is_written_once() -> None:
    s = _bounds_store()
    for text, parse in ((page(s), parse_text), (page(s, openmetrics=True), parse_openmetrics)):  # type: ignore[arg-type]
        assert text.count('rpc_duration_seconds{job="svc",quantile="0.5"} 0.2\n') == 1
        assert 'quantile="0.5"} 0.1' not in text
        assert 'repeated_seconds_bucket{job="svc",le="1"} 3\n' in text  # through the last "1"
        assert text.count('repeated_seconds_bucket{job="svc",le="1"}') == 1
        samples = [
            (sample.name, tuple(sorted(sample.labels.items())))
            for family in parse(text)
            for sample in family.samples
        ]
        assert len(samples) == len(set(samples))
