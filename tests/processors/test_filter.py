"""The filter processor: include/exclude by name, type, resource and point attributes."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metricgate.config import load_config_text
from metricgate.model import INTERNER, Batch, MetricKind, MetricPoints, sorted_attributes
from metricgate.pipeline.service import Service
from metricgate.processors.filter import FilterConfig, FilterProcessor
from tests.support.batches import metric
from tests.support.capture import (
    CaptureExporter,
    InjectReceiver,
    processor_config_problems,
    registry_with_capture,
)
from tests.support.poll import wait_until
from tests.support.sink import Sink

T0 = 1_700_000_000_000_000_000


def group(
    name: str,
    points: list[dict[str, str]],
    kind: MetricKind = MetricKind.SUM,
    service: str = "svc",
) -> MetricPoints:
    m = metric(name, kind=kind, service=service)
    out = MetricPoints(m)
    for i, attributes in enumerate(points):
        out.append(INTERNER.intern_series(m, sorted_attributes(dict(attributes))), float(i), T0)
    return out


def processor(config: dict[str, Any]) -> tuple[FilterProcessor, Sink]:
    sink = Sink()
    return FilterProcessor("filter", FilterConfig.model_validate(config), sink), sink


def names(batch: Batch) -> list[tuple[str, tuple[tuple[str, Any], ...]]]:
    return [(g.metric.name, s.attributes) for g in batch.metrics for s in g.series]


async def test_include_strict_names_keeps_only_those_metrics() -> None:
    proc, sink = processor({"include": {"metric_names": ["a", "c"]}})
    batch = Batch([group("a", [{}]), group("b", [{}]), group("c", [{}])])
    await proc.consume(batch)
    (out,) = sink.batches
    assert [g.metric.name for g in out.metrics] == ["a", "c"]
    assert out.metrics[0] is batch.metrics[0]  # kept groups are passed on as they are
    assert proc.dropped.counts == {"filtered": 1}


async def test_regexp_names_must_match_the_whole_name() -> None:
    proc, sink = processor(
        {"include": {"match_type": "regexp", "metric_names": ["req", "http_.*"]}}
    )
    await proc.consume(Batch([group("requests", [{}]), group("http_requests", [{}])]))
    assert [g.metric.name for g in sink.batches[0].metrics] == ["http_requests"]


async def test_exclude_by_type_and_resource() -> None:
    proc, sink = processor(
        {
            "exclude": {
                "metric_types": ["gauge"],
                "resource_attributes": [{"key": "service.name", "value": "noisy"}],
            }
        }
    )
    batch = Batch(
        [
            group("g", [{}], MetricKind.GAUGE, "noisy"),
            group("g", [{}], MetricKind.GAUGE, "quiet"),
            group("s", [{}], MetricKind.SUM, "noisy"),
        ]
    )
    await proc.consume(batch)
    out = sink.batches[0]
    assert [(g.metric.name, g.metric.resource.get("service.name")) for g in out.metrics] == [
        ("g", "quiet"),
        ("s", "noisy"),
    ]


async def test_point_attributes_then_exclude() -> None:
    proc, sink = processor(
        {
            "include": {"attributes": [{"key": "code", "value": "2..", "match_type": "regexp"}]},
            "exclude": {"metric_names": ["b"], "attributes": [{"key": "path", "value": "/health"}]},
        }
    )
    a = group("a", [{"code": "200"}, {"code": "500"}, {"path": "/"}])
    b = group("b", [{"code": "200", "path": "/health"}, {"code": "201", "path": "/api"}])
    await proc.consume(Batch([a, b]))
    assert names(sink.batches[0]) == [
        ("a", (("code", "200"),)),
        ("b", (("code", "201"), ("path", "/api"))),
    ]
    assert proc.dropped.counts["filtered"] == 3


async def test_key_presence_and_value_types_compare_as_text() -> None:
    proc, sink = processor(
        {"include": {"attributes": [{"key": "code", "value": 200}, {"key": "region"}]}}
    )
    m = metric("x")
    g = MetricPoints(m)
    for attributes in ({"code": 200, "region": "eu"}, {"code": "200", "region": ""}, {"code": 200}):
        g.append(INTERNER.intern_series(m, sorted_attributes(attributes)), 1.0, T0)  # type: ignore[arg-type]
    await proc.consume(Batch([g]))
    assert len(sink.batches[0].metrics[0].series) == 2


async def test_unchanged_batch_is_forwarded_as_is_and_empty_one_not_at_all() -> None:
    proc, sink = processor({"exclude": {"metric_names": ["drop_me"]}})
    batch = Batch([group("keep", [{}])])
    await proc.consume(batch)
    assert sink.batches == [batch] and sink.batches[0] is batch
    await proc.consume(Batch([group("drop_me", [{}, {"k": "v"}])]))
    assert len(sink.batches) == 1
    assert proc.dropped.counts["filtered"] == 2


async def test_verdicts_are_cached_per_metric_and_series(monkeypatch: pytest.MonkeyPatch) -> None:
    proc, sink = processor({"include": {"attributes": [{"key": "k", "value": "1"}]}})
    batch = Batch([group("a", [{"k": "1"}, {"k": "2"}])])
    await proc.consume(batch)
    assert len(proc._metric_verdicts) == 1 and len(proc._series_verdicts) == 2

    def fail(*_: object) -> Any:
        raise AssertionError("verdict recomputed")

    monkeypatch.setattr(proc, "_metric_verdict", fail)
    monkeypatch.setattr(proc, "_series_verdict", fail)
    await proc.consume(batch)
    first, second = sink.batches
    assert first.metrics[0].series[0] is second.metrics[0].series[0] is batch.metrics[0].series[0]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "{include: {match_type: regexp, metric_names: [ok, '(']}}",
            "processors.filter.include.metric_names[1]: invalid regex '(': missing closing )",
        ),
        (
            "{exclude: {match_type: regexp, attributes: [{key: k, value: '[a'}]}}",
            "processors.filter.exclude.attributes[0].value: invalid regex '[a': missing closing ]",
        ),
        (
            "{include: {match_type: fuzzy, metric_names: [a]}}",
            "processors.filter.include.match_type: expected 'strict' or 'regexp', got 'fuzzy'",
        ),
        (
            "{include: {metric_types: [counter]}}",
            "processors.filter.include.metric_types[0]: expected 'gauge', 'sum', 'histogram', "
            "'exponential_histogram' or 'summary', got 'counter'",
        ),
        (
            "{include: {}}",
            "processors.filter.include: expected at least one of metric_names, metric_types, "
            "resource_attributes, attributes",
        ),
        (
            "{include: {attributes: [{value: x}]}}",
            "processors.filter.include.attributes[0].key: required key is missing",
        ),
        (
            "{include: {attributes: [{key: k, value: [1, 2]}]}}",
            "processors.filter.include.attributes[0].value: expected a string, number or "
            "boolean, got [1, 2]",
        ),
        (
            "{include: {match_type: regexp, metric_names: ['a(?!b)']}}",
            "processors.filter.include.metric_names[0]: invalid regex 'a(?!b)': negative "
            "lookahead (?!...) is not supported: RE2 (used by Prometheus) does not support it",
        ),
        (
            "{include: {match_type: regexp, attributes: [{key: k, value: 'x\\Z'}]}}",
            "processors.filter.include.attributes[0].value: invalid regex 'x\\Z': invalid "
            "escape sequence \\Z (RE2 spells end of text \\z)",
        ),
        (
            "{metrics: {include: {metric_names: [a]}}}",
            "processors.filter.metrics: unknown key (expected one of: exclude, include)",
        ),
    ],
)
def test_config_errors_name_the_key(body: str, message: str) -> None:
    assert message in processor_config_problems("filter", body)


# --- include/exclude against a brute-force reference ------------------------------------------

NAMES = ["a", "b", "ab", "ba"]
KINDS = [MetricKind.GAUGE, MetricKind.SUM, MetricKind.HISTOGRAM]
PATTERNS = ["a.*", "b", ".*a", "ab|b"]

attribute_matches = st.lists(
    st.fixed_dictionaries(
        {"key": st.sampled_from(["k", "j"]), "value": st.sampled_from(["1", "2", "[12]", None])}
    ),
    max_size=2,
)
matchers = st.fixed_dictionaries(
    {
        "match_type": st.sampled_from(["strict", "regexp"]),
        "metric_names": st.lists(st.sampled_from(NAMES + PATTERNS), max_size=2),
        "metric_types": st.lists(st.sampled_from(["gauge", "sum", "histogram"]), max_size=2),
        "resource_attributes": st.lists(
            st.fixed_dictionaries(
                {"key": st.just("service.name"), "value": st.sampled_from(["x", "y", "."])}
            ),
            max_size=1,
        ),
        "attributes": attribute_matches,
    }
).filter(lambda m: any(m[k] for k in m if k != "match_type"))
points = st.lists(
    st.tuples(
        st.sampled_from(NAMES),
        st.sampled_from(KINDS),
        st.sampled_from(["x", "y"]),
        st.dictionaries(st.sampled_from(["k", "j"]), st.sampled_from(["1", "2"])),
    ),
    max_size=12,
)


def reference_matches(matcher: dict[str, Any], point: tuple[Any, ...]) -> bool:
    name, kind, service, attributes = point
    regexp = matcher["match_type"] == "regexp"

    def value_ok(pattern: str | None, actual: str | None) -> bool:
        if actual is None:
            return False
        if pattern is None:
            return True
        return bool(re.fullmatch(pattern, actual)) if regexp else pattern == actual

    if matcher["metric_names"] and not any(
        (re.fullmatch(n, name) if regexp else n == name) for n in matcher["metric_names"]
    ):
        return False
    if matcher["metric_types"] and kind.name.lower() not in matcher["metric_types"]:
        return False
    if not all(value_ok(m["value"], service) for m in matcher["resource_attributes"]):
        return False
    return all(value_ok(m["value"], attributes.get(m["key"])) for m in matcher["attributes"])


@settings(max_examples=150, deadline=None)
@given(include=st.none() | matchers, exclude=st.none() | matchers, data=points)
def test_matches_brute_force_reference(
    include: dict[str, Any] | None, exclude: dict[str, Any] | None, data: list[tuple[Any, ...]]
) -> None:
    config = {k: v for k, v in (("include", include), ("exclude", exclude)) if v is not None}
    proc, sink = processor(config)
    batch = Batch()
    for name, kind, service, attributes in data:
        g = group(name, [attributes], kind, service)
        batch.metrics.append(g)
    expected = [
        (p[0], tuple(sorted(p[3].items())))
        for p in data
        if (include is None or reference_matches(include, p))
        and not (exclude is not None and reference_matches(exclude, p))
    ]
    for _ in range(2):  # the second pass answers from the caches
        sink.batches.clear()
        asyncio.run(proc.consume(batch))
        assert (names(sink.batches[0]) if sink.batches else []) == expected


# --- in a running pipeline --------------------------------------------------------------------


async def test_in_pipeline() -> None:
    config = load_config_text(
        """
receivers: {inject: {}}
processors: {filter/drop_debug: {exclude: {match_type: regexp, metric_names: ["debug_.*"]}}}
exporters: {capture: {}}
service:
  telemetry: {metrics: {address: ""}}
  pipelines: {metrics: {receivers: [inject], processors: [filter/drop_debug],
    exporters: [capture]}}
""",
        registry_with_capture(),
        {},
    )
    service = Service(config)
    await service.start()
    try:
        await InjectReceiver.instances["inject"].push(
            Batch([group("debug_x", [{}]), group("requests", [{"k": "v"}])])
        )
        capture = CaptureExporter.instances["capture"]
        await wait_until(lambda: bool(capture.batches))
        assert names(capture.batches[0]) == [("requests", (("k", "v"),))]
        dropped = service.telemetry.registry.get_sample_value(
            "metricgate_processor_dropped_points_total",
            {"processor": "filter/drop_debug", "reason": "filtered"},
        )
        assert dropped == 1
    finally:
        await service.shutdown()
