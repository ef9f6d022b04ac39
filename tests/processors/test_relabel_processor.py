"""The relabel processor in a pipeline: native output, drops by reason, duplicates, the cache."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from metricgate.config import load_config_text
from metricgate.exporters.prometheus.config import PrometheusExporterConfig
from metricgate.exporters.prometheus.exporter import PrometheusExporter
from metricgate.model import (
    INTERNER,
    Batch,
    Exemplar,
    HistogramPoint,
    Metric,
    MetricKind,
    MetricPoints,
    Series,
    Temporality,
    sorted_attributes,
)
from metricgate.pipeline.host import Host
from metricgate.pipeline.service import Service
from metricgate.processors.relabel import Drop, RelabelConfig, RelabelProcessor, RuleSet
from metricgate.telemetry.metrics import SelfMetrics
from metricgate.translate.series import PrometheusTranslator, SeriesView
from tests.support.batches import metric
from tests.support.capture import CaptureExporter, InjectReceiver, registry_with_capture
from tests.support.sink import Sink

TS = 1_700_000_000_000_000_000
SCOPE = {"job": "svc", "otel_scope_name": "test.scope", "otel_scope_version": "1.0"}


def series(m: Metric, **attributes: Any) -> Series:
    return INTERNER.intern_series(m, sorted_attributes(attributes))


def batch_of(m: Metric, *attribute_sets: dict[str, Any]) -> Batch:
    points = MetricPoints(m)
    for index, attributes in enumerate(attribute_sets):
        points.append(series(m, **attributes), float(index), TS + index)
    return Batch([points])


def processor(rules: str, **options: Any) -> tuple[RelabelProcessor, Sink]:
    config = RelabelConfig.model_validate({"relabel_configs": yaml.safe_load(rules), **options})
    sink = Sink()
    return RelabelProcessor("relabel", config, sink), sink


def outputs(sink: Sink) -> list[tuple[str, dict[str, Any], Any]]:
    """(metric name, labels, value) of every forwarded point as the exporters show it, in order:
    a native series' own name and attributes, or the Prometheus view of one passed on as it
    came (the rules left it unchanged)."""
    found: list[tuple[str, dict[str, Any], Any]] = []
    translator = PrometheusTranslator()
    for batch in sink.batches:
        for points in batch:
            for s, value in zip(points.series, points.values, strict=True):
                assert s.metric is points.metric
                if points.metric.native_prometheus:
                    found.append((points.metric.name, dict(s.attributes), value))
                    continue
                view = translator.build_series(s)
                assert isinstance(view, SeriesView)
                found.append((view.family.name, dict(view.labels), value))
    return found


async def test_output_is_native_with_the_resulting_labels() -> None:
    relabel, sink = processor(
        """
        - {source_labels: [k], target_label: key}
        - {action: labeldrop, regex: 'otel_scope_.*|k'}
        - {source_labels: [__name__], regex: '(.*)_total', target_label: __name__,
           replacement: '${1}_count_total'}
        """
    )
    m = metric("requests", unit="ms", description="Requests served.")
    await relabel.consume(batch_of(m, {"k": "a"}, {"k": "b"}))
    assert outputs(sink) == [
        ("requests_milliseconds_count_total", {"job": "svc", "key": "a"}, 0.0),
        ("requests_milliseconds_count_total", {"job": "svc", "key": "b"}, 1.0),
    ]
    out = sink.batches[0].metrics[0].metric
    assert (out.resource, out.scope, out.kind, out.temporality, out.monotonic) == (
        m.resource,
        m.scope,
        m.kind,
        m.temporality,
        m.monotonic,
    )
    assert (out.unit, out.description) == ("ms", "Requests served.")


async def test_an_unchanged_series_goes_on_as_it_came() -> None:
    relabel, sink = processor("[{action: keep, source_labels: [k], regex: '.*'}]")
    m = metric("http.server.duration", unit="ms")
    batch = batch_of(m, {"k": "a", "http.method": "GET"})
    await relabel.consume(batch)
    [forwarded] = sink.batches[0].metrics
    assert forwarded.metric is m and forwarded.series == batch.metrics[0].series


async def test_the_translator_renders_an_unchanged_series_as_before() -> None:
    relabel, sink = processor("[{action: keep, source_labels: [k], regex: '.*'}]")
    batch = batch_of(metric("requests", unit="By"), {"k": "a"})
    await relabel.consume(batch)
    translator = PrometheusTranslator()
    before = translator.build_series(batch.metrics[0].series[0])
    after = translator.build_series(sink.batches[0].metrics[0].series[0])
    assert isinstance(before, SeriesView) and isinstance(after, SeriesView)
    assert (after.family.name, after.labels) == (before.family.name, before.labels)


async def _page(batch: Batch) -> list[str]:
    """The scrape page lines a default `prometheus` exporter serves for `batch`."""
    exporter = PrometheusExporter("prometheus", PrometheusExporterConfig(endpoint="127.0.0.1:0"))
    await exporter.start(Host(SelfMetrics()))
    try:
        await exporter.export(batch)
        url = f"http://127.0.0.1:{exporter.port}/metrics"
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            return (await response.text()).splitlines()
    finally:
        await exporter.shutdown()


async def test_the_exporter_page_of_unchanged_series_is_the_same() -> None:
    resource = INTERNER.intern_resource(
        sorted_attributes({"service.name": "api", "service.instance.id": "i-1", "host.name": "h"})
    )
    scope = INTERNER.intern_scope("lib", "2.0")
    counter = INTERNER.intern_metric(
        resource, scope, "http.requests", "1", MetricKind.SUM, Temporality.CUMULATIVE, True, "Hits."
    )
    histogram = INTERNER.intern_metric(
        resource, scope, "rpc.duration", "ms", MetricKind.HISTOGRAM, Temporality.CUMULATIVE
    )
    gauge = INTERNER.intern_metric(resource, scope, "queue.size", "{items}", MetricKind.GAUGE)
    groups = [MetricPoints(counter), MetricPoints(histogram), MetricPoints(gauge)]
    groups[0].append(series(counter, **{"http.method": "GET", "le": "x"}), 3.0, TS)
    groups[1].append(series(histogram, rpc="a"), HistogramPoint(2, 3.0, (1.0, 5.0), (1, 1, 0)), TS)
    groups[2].append(series(gauge, **{"queue.name": "q"}), 7.0, TS)
    relabel, sink = processor("[{action: keep, source_labels: [__name__], regex: '.+'}]")
    await relabel.consume(Batch(groups))
    before, after = await _page(Batch(groups)), await _page(sink.batches[0])
    assert [line for line in after if "target_info" not in line] == [
        line for line in before if "target_info" not in line
    ]
    assert len(after) > 12


async def test_points_stay_aligned_when_some_are_dropped() -> None:
    relabel, sink = processor("[{action: drop, source_labels: [k], regex: 'drop.*'}]")
    m = metric("jobs")
    points = MetricPoints(m)
    for index, key in enumerate(["drop0", "keep1", "drop2", "keep3"]):
        points.append(series(m, k=key), float(index), TS + index, TS - index, flags=index % 2)
    points.add_exemplars(1, (Exemplar(1.5, TS, "t1", "s1"),))
    points.add_exemplars(2, (Exemplar(2.5, TS, "t2", "s2"),))
    points.add_exemplars(3, (Exemplar(3.5, TS, "t3", "s3"),))
    await relabel.consume(Batch([points]))
    (out,) = sink.batches[0].metrics
    assert [dict(s.attributes)["k"] for s in out.series] == ["keep1", "keep3"]
    assert (out.values, out.timestamps, out.start_timestamps, out.flags) == (
        [1.0, 3.0],
        [TS + 1, TS + 3],
        [TS - 1, TS - 3],
        [1, 1],
    )
    assert out.exemplars is not None
    assert {i: e[0].trace_id for i, e in out.exemplars.items()} == {0: "t1", 1: "t3"}
    assert relabel.dropped == {"dropped_by_rule": 2}


async def test_histograms_are_relabeled_under_their_base_family_name() -> None:
    relabel, sink = processor(
        """
        - {action: keep, source_labels: [__name__], regex: 'latency_seconds'}
        - {target_label: __name__, replacement: rpc_latency_seconds}
        """
    )
    m = metric("latency", MetricKind.HISTOGRAM, unit="s")
    point = HistogramPoint(3, 1.5, (0.1, 1.0), (1, 1, 1))
    points = MetricPoints(m)
    points.append(series(m, k="a"), point, TS)
    await relabel.consume(Batch([points]))
    (out,) = sink.batches[0].metrics
    assert (out.metric.name, out.metric.kind, out.values) == (
        "rpc_latency_seconds",
        MetricKind.HISTOGRAM,
        [point],
    )


async def test_a_rule_may_not_set_le_on_a_histogram() -> None:
    relabel, sink = processor("[{target_label: le, replacement: '1'}]")
    m = metric("latency", MetricKind.HISTOGRAM, unit="s")
    points = MetricPoints(m)
    points.append(series(m, k="a"), HistogramPoint(1, 1.0, (1.0,), (1, 0)), TS)
    await relabel.consume(Batch([points]))
    assert not sink.batches
    assert relabel.dropped == {"invalid_label_name": 1}


async def test_series_without_a_prometheus_view_are_dropped_with_the_translator_reason() -> None:
    relabel, sink = processor("[{action: keep, source_labels: [k], regex: '.*'}]")
    m = metric("queue", MetricKind.SUM, temporality=Temporality.DELTA, monotonic=False)
    await relabel.consume(batch_of(m, {"k": "a"}))
    assert not sink.batches
    assert relabel.dropped == {"delta_non_monotonic_sum": 1}


async def test_native_prometheus_input_is_its_own_view() -> None:
    relabel, sink = processor("[{action: labeldrop, regex: instance}]")
    resource = INTERNER.intern_resource(())
    scope = INTERNER.intern_scope("")
    m = INTERNER.intern_metric(resource, scope, "up", "", MetricKind.GAUGE, native_prometheus=True)
    await relabel.consume(batch_of(m, {"job": "node", "instance": "h:9100"}))
    assert outputs(sink) == [("up", {"job": "node"}, 0.0)]


async def test_two_inputs_becoming_one_output_in_a_batch_keep_the_first(
    caplog: pytest.LogCaptureFixture,
) -> None:
    relabel, sink = processor(
        """
        - {action: labeldrop, regex: 'k|otel_scope_.*'}
        - {target_label: __name__, replacement: merged}
        """
    )
    # Different descriptors (description, unit) still make one series on a Prometheus page.
    a, b = metric("a"), metric("b", unit="ms", description="Bees.")
    batch = Batch([*batch_of(a, {"k": "1"}, {"k": "2"}).metrics, *batch_of(b, {"k": "3"}).metrics])
    with caplog.at_level(logging.WARNING):
        await relabel.consume(batch)
        await relabel.consume(batch)
    assert outputs(sink) == [("merged", {"job": "svc"}, 0.0)] * 2
    assert relabel.dropped == {"duplicate_series": 4}
    warnings = [r for r in caplog.records if "duplicate_series" in r.getMessage()]
    assert len(warnings) == 1  # rate-limited: once per reason per interval


async def test_metrics_renamed_alike_merge_into_one_group_with_exemplars_aligned() -> None:
    relabel, sink = processor("[{target_label: __name__, replacement: merged}]")
    a, b = metric("a"), metric("b")
    first, second = MetricPoints(a), MetricPoints(b)
    first.append(series(a, k="1"), 1.0, TS)
    first.append(series(a, k="2"), 2.0, TS)
    second.append(series(b, k="3"), 3.0, TS)
    first.add_exemplars(1, (Exemplar(2.0, TS, "ta"),))
    second.add_exemplars(0, (Exemplar(3.0, TS, "tb"),))
    await relabel.consume(Batch([first, second]))
    (out,) = sink.batches[0].metrics
    assert [dict(s.attributes)["k"] for s in out.series] == ["1", "2", "3"]
    assert out.values == [1.0, 2.0, 3.0]
    assert out.exemplars is not None
    assert {i: e[0].trace_id for i, e in out.exemplars.items()} == {1: "ta", 2: "tb"}


async def test_a_cache_restart_within_a_batch_keeps_every_point_right() -> None:
    relabel, sink = processor(
        "[{action: drop, source_labels: [k], regex: '2'}, {target_label: x, replacement: y}]",
        max_cached_series=2,
    )
    m = metric("a")
    groups = [batch_of(m, {"k": str(i)}, {"k": str(i + 1)}).metrics[0] for i in (0, 2, 4)]
    await relabel.consume(Batch(groups))
    assert [attributes["k"] for _, attributes, _ in outputs(sink)] == ["0", "1", "3", "4", "5"]
    assert relabel.dropped == {"dropped_by_rule": 1}


async def test_the_same_output_from_two_batches_is_no_duplicate() -> None:
    relabel, sink = processor("[{action: labeldrop, regex: k}]")
    m = metric("a")
    await relabel.consume(batch_of(m, {"k": "1"}))
    await relabel.consume(batch_of(m, {"k": "2"}))
    assert [name for name, _, _ in outputs(sink)] == ["a_total", "a_total"]
    assert not relabel.dropped


async def test_steady_state_forwards_the_input_lists_and_reuses_the_verdicts() -> None:
    relabel, sink = processor("[{action: labeldrop, regex: 'otel_scope_.*'}]")
    batch = batch_of(metric("a"), {"k": "1"}, {"k": "2"})
    await relabel.consume(batch)
    await relabel.consume(batch)
    first, second = (b.metrics[0] for b in sink.batches)
    assert second.values is batch.metrics[0].values
    assert all(x is y for x, y in zip(first.series, second.series, strict=True))
    assert len(relabel._cache) == 2


async def test_the_cache_is_bounded_and_stays_correct() -> None:
    relabel, sink = processor(
        "[{action: drop, source_labels: [k], regex: '[02468]'}]", max_cached_series=3
    )
    m = metric("a")
    for _ in range(3):
        for key in range(10):
            await relabel.consume(batch_of(m, {"k": str(key)}))
            assert len(relabel._cache) <= 3
    assert sorted({attributes["k"] for _, attributes, _ in outputs(sink)}) == list("13579")
    assert relabel.dropped == {"dropped_by_rule": 15}


KEYS = st.sampled_from(["k", "method", "code", "instance_id"])
VALUES = st.sampled_from(["a", "b", "GET", "200", "500", "x-1", "x-2"])
RULES = st.sampled_from(
    [
        "[{action: drop, source_labels: [code], regex: '5..'}]",
        "[{action: labeldrop, regex: 'k|otel_scope_.*'}]",
        "[{source_labels: [method, code], target_label: mc}, {action: labeldrop, regex: code}]",
        "[{action: keep, if: '{method=\"GET\"}'}, {target_label: __name__, replacement: x}]",
        "[{action: labelmap, regex: '(.*)_id', replacement: '$1'}]",
        "[{action: hashmod, source_labels: [k], modulus: 3, target_label: k}]",
        "[{source_labels: [method], regex: GET, target_label: __name__, replacement: gets},"
        " {action: drop, source_labels: [code], regex: '5..'}]",
    ]
)


@settings(max_examples=60, deadline=None)
@given(RULES, st.lists(st.dictionaries(KEYS, VALUES, min_size=1), min_size=1, max_size=8))
def test_cached_verdicts_equal_uncached_evaluation(
    rules: str, attribute_sets: list[dict[str, str]]
) -> None:
    relabel, sink = processor(rules)
    batch = batch_of(metric("requests"), *attribute_sets)
    asyncio.run(relabel.consume(batch))
    uncached = outputs(sink)
    sink.batches.clear()
    asyncio.run(relabel.consume(batch))  # every verdict comes from the cache now
    assert outputs(sink) == uncached
    # ...and both equal the rules applied directly to each point's Prometheus view, where the
    # first input series wins when several become the same output series.
    rule_set, translator = RuleSet(relabel.config.rules), PrometheusTranslator()
    expected = []
    owners: dict[object, Series] = {}
    for s, value in zip(batch.metrics[0].series, batch.metrics[0].values, strict=True):
        view = translator.build_series(s)
        assert isinstance(view, SeriesView)
        result = rule_set.apply((("__name__", view.family.name), *view.labels))
        if isinstance(result, Drop) or owners.setdefault(result, s) != s:
            continue
        labels = dict(result)
        expected.append((labels.pop("__name__"), labels, value))
    assert sorted(uncached, key=repr) == sorted(expected, key=repr)


async def test_in_a_pipeline_drops_reach_own_telemetry() -> None:
    config = load_config_text(
        """
receivers: {inject: {}}
processors:
  relabel/x:
    relabel_configs:
      - {action: drop, source_labels: [k], regex: b}
      - {target_label: __name__, replacement: '1nvalid', if: '{k="c"}'}
exporters: {capture: {}}
service:
  telemetry: {metrics: {address: ""}}
  pipelines: {metrics: {receivers: [inject], processors: [relabel/x], exporters: [capture]}}
""",
        registry_with_capture(),
        {},
    )
    service = Service(config)
    await service.start()
    try:
        await InjectReceiver.instances["inject"].push(
            batch_of(metric("requests"), {"k": "a"}, {"k": "b"}, {"k": "c"})
        )
        capture = CaptureExporter.instances["capture"]
        await asyncio.wait_for(capture.received.wait(), 5)
        assert capture.points() == 1
        registry = service.telemetry.registry
        for reason in ("dropped_by_rule", "invalid_metric_name"):
            labels = {"processor": "relabel/x", "reason": reason}
            value = registry.get_sample_value("metricgate_processor_dropped_points_total", labels)
            assert value == 1.0, reason
        cached = registry.get_sample_value(
            "metricgate_processor_relabel_cached_series", {"processor": "relabel/x"}
        )
        assert cached == 3.0
    finally:
        await service.shutdown()
