"""The Prometheus exporters' translation options hold for every series, whatever processors ran:
a relabel processor that changes nothing changes no output, and relabelled or aggregated series
still get the exporter's `namespace`, copied resource attributes and const labels."""

from __future__ import annotations

import asyncio
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metricgate.exporters.prometheus.render import render
from metricgate.exporters.prometheus.store import Store
from metricgate.exporters.prometheus_remote_write import Encoder
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
from metricgate.processors.relabel import RelabelConfig, RelabelProcessor
from metricgate.translate import PrometheusTranslator
from tests.support.remote_write import decode_body, fragments_body, samples_of
from tests.support.sink import Sink

TS = 1_700_000_000_000_000_000

NO_OP_RULES = [
    "{action: keep, source_labels: [__name__], regex: '.+'}",
    "{action: drop, source_labels: [no_such_label], regex: 'x'}",
    "{source_labels: [job], target_label: job}",
    "{action: labelkeep, regex: '.*'}",
    "{action: labeldrop, regex: 'no_such_label'}",
    "{action: lowercase, source_labels: [no_such_label], target_label: no_such_label}",
    "{source_labels: [env], regex: '(.*)', target_label: env, replacement: '$1'}",
]

OPTIONS = st.fixed_dictionaries(
    {
        "namespace": st.sampled_from(["", "shop"]),
        "resource_attributes": st.lists(
            st.sampled_from(["deployment.environment", "host.name", "team"]), max_size=2
        ),
        "resource_to_telemetry_conversion": st.booleans(),
        "enable_scope_labels": st.booleans(),
        "add_unit_suffixes": st.booleans(),
        "const_labels": st.sampled_from([{}, {"region": "eu1"}, {"env": "const"}]),
    }
)
KINDS = st.sampled_from(
    [MetricKind.GAUGE, MetricKind.SUM, MetricKind.HISTOGRAM, MetricKind.SUMMARY]
)
NAMES = st.sampled_from(["http.requests", "queue.depth", "rpc.duration", "jobs_total", "a.b-c"])
UNITS = st.sampled_from(["", "s", "ms", "By", "1", "{request}"])
KEYS = st.sampled_from(["env", "route", "code", "http.method", "job", "le", "a.b", "a_b"])
VALUES = st.sampled_from(["prod", "/cart", "200", "GET", "x", ""])
RESOURCES = st.fixed_dictionaries(
    {"service.name": st.sampled_from(["checkout", "worker"])},
    optional={
        "service.instance.id": st.sampled_from(["pod-1", "pod-2"]),
        "service.namespace": st.just("shop"),
        "deployment.environment": st.sampled_from(["prod", "staging"]),
        "host.name": st.just("h1"),
        "team": st.just("payments"),
    },
)

SERIES = st.tuples(NAMES, UNITS, KINDS, RESOURCES, st.dictionaries(KEYS, VALUES, max_size=3))


def value_of(kind: MetricKind, index: int) -> PointValue:
    if kind is MetricKind.HISTOGRAM:
        return HistogramPoint(3, 1.5, (0.5, 1.0), (1, 1, 1))
    if kind is MetricKind.SUMMARY:
        return SummaryPoint(2, 1.0, ((0.5, 0.4), (0.9, 0.6)))
    return float(index)


def batch_of(rows: list[tuple[str, str, MetricKind, dict[str, str], dict[str, str]]]) -> Batch:
    groups: dict[object, MetricPoints] = {}
    scope = INTERNER.intern_scope("lib", "1.0")
    for index, (name, unit, kind, resource, attributes) in enumerate(rows):
        temporality = (
            Temporality.UNSPECIFIED
            if kind in (MetricKind.GAUGE, MetricKind.SUMMARY)
            else Temporality.CUMULATIVE
        )
        m = INTERNER.intern_metric(
            INTERNER.intern_resource(sorted_attributes(dict(resource))),
            scope,
            name,
            unit,
            kind,
            temporality,
            kind is MetricKind.SUM,
        )
        group = groups.setdefault(m, MetricPoints(m))
        series = INTERNER.intern_series(m, sorted_attributes(dict(attributes)))
        group.append(series, value_of(kind, index), TS)
    return Batch(list(groups.values()))


def relabelled(batch: Batch, rules: list[str]) -> Batch:
    config = RelabelConfig.model_validate(
        {"relabel_configs": yaml.safe_load(f"[{', '.join(rules)}]")}
    )
    sink = Sink()
    asyncio.run(RelabelProcessor("relabel", config, sink).consume(batch))
    return Batch([group for out in sink.batches for group in out.metrics])


def outputs(batch: Batch, options: dict[str, Any]) -> tuple[str, str, list[Any]]:
    """The scrape page (text, OpenMetrics) and the remote-write samples of `batch`."""
    store = Store(PrometheusTranslator(**options))
    store.ingest(batch, 0.0)
    encoder = Encoder(PrometheusTranslator(**options))
    per_shard, _ = encoder.encode(batch, 1, 0.0)
    written = sorted(samples_of(decode_body(fragments_body(per_shard))), key=repr)
    return (
        "".join(render(store)),
        "".join(render(store, openmetrics=True)),
        written,
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(SERIES, min_size=1, max_size=6),
    rules=st.lists(st.sampled_from(NO_OP_RULES), min_size=1, max_size=3),
    options=OPTIONS,
)
def test_a_no_op_relabel_never_changes_an_output(
    rows: list[Any], rules: list[str], options: dict[str, Any]
) -> None:
    batch = batch_of(rows)
    assert outputs(relabelled(batch, rules), options) == outputs(batch, options)


def test_relabelled_series_keep_the_namespace_and_copied_resource_attributes() -> None:
    resource = {"service.name": "checkout", "deployment.environment": "prod"}
    batch = batch_of(
        [("http.requests", "", MetricKind.SUM, resource, {"route": "/cart", "internal": "1"})]
    )
    changed = relabelled(batch, ["{action: labeldrop, regex: internal}"])
    assert changed.metrics[0].metric.native_prometheus  # the rules changed it
    options = {"namespace": "shop", "resource_attributes": ["deployment.environment"]}
    page, _, written = outputs(changed, options)
    line = (
        'shop_http_requests_total{deployment_environment="prod",job="checkout",'
        'otel_scope_name="lib",otel_scope_version="1.0",route="/cart"} 0\n'
    )
    assert line in page
    assert "target_info" in page  # its resource still describes it
    [labels] = [dict(lbl) for lbl, _, _ in written if dict(lbl)["__name__"] != "target_info"]
    assert labels["__name__"] == "shop_http_requests_total"
    assert labels["deployment_environment"] == "prod" and "internal" not in labels


def test_native_series_get_the_namespace_but_target_info_keeps_its_name() -> None:
    translator = PrometheusTranslator(namespace="shop", const_labels={"region": "eu1"})
    empty = INTERNER.intern_resource(())
    scope = INTERNER.intern_scope("", "")
    for name in ("up", "target_info"):
        m = INTERNER.intern_metric(
            empty, scope, name, "", MetricKind.GAUGE, Temporality.UNSPECIFIED,
            native_prometheus=True,
        )  # fmt: skip
        view = translator.build_series(INTERNER.intern_series(m, (("job", "node"),)))
        assert not isinstance(view, str)
        assert view.family.name == ("shop_up" if name == "up" else "target_info")  # type: ignore[union-attr]
        assert dict(view.labels) == {"job": "node", "region": "eu1"}  # type: ignore[union-attr]
