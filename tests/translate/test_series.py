"""PrometheusTranslator: families, labels, job/instance, scope labels, target_info, caching."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metricgate.model import INTERNER, MetricKind, Series, Temporality, sorted_attributes
from metricgate.translate import (
    Dropped,
    FamilyType,
    FamilyView,
    PrometheusTranslator,
    SeriesView,
    attribute_text,
)
from tests.exporters.prometheus_points import metric, resource, scope

GAUGE, SUM, HISTOGRAM = MetricKind.GAUGE, MetricKind.SUM, MetricKind.HISTOGRAM
DELTA, CUMULATIVE, UNSPECIFIED = Temporality.DELTA, Temporality.CUMULATIVE, Temporality.UNSPECIFIED


def series(m: object, **attributes: object) -> Series:
    return INTERNER.intern_series(m, sorted_attributes(attributes))  # type: ignore[arg-type]


def labels(view: SeriesView | Dropped) -> dict[str, str]:
    assert isinstance(view, SeriesView), view
    return dict(view.labels)


def family(view: FamilyView | Dropped) -> FamilyView:
    assert isinstance(view, FamilyView), view
    return view


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ({"service.name": "api"}, {"job": "api"}),
        ({"service.name": "api", "service.namespace": "shop"}, {"job": "shop/api"}),
        (
            {"service.name": "api", "service.instance.id": "pod-1"},
            {"job": "api", "instance": "pod-1"},
        ),
        ({"service.name": "unknown_service:python"}, {"job": "unknown_service:python"}),
        ({"service.namespace": "shop"}, {"job": "shop/unknown_service"}),
        ({"service.instance.id": "pod-1"}, {"instance": "pod-1"}),
        ({"host.name": "h"}, {}),
        ({}, {}),
    ],
)
def test_job_and_instance_come_from_the_service_attributes(
    attributes: dict[str, str], expected: dict[str, str]
) -> None:
    translator = PrometheusTranslator(enable_scope_labels=False)
    m = metric("m", res=resource(attributes))
    assert labels(translator.series(series(m))) == expected


def test_data_point_job_and_instance_are_kept_as_exported_labels() -> None:
    translator = PrometheusTranslator(enable_scope_labels=False)
    m = metric("m", res=resource({"service.name": "api", "service.instance.id": "i-1"}))
    assert labels(translator.series(series(m, job="batch", instance="x"))) == {
        "job": "api",
        "instance": "i-1",
        "exported_job": "batch",
        "exported_instance": "x",
    }
    # Without a service, the data point's own job (e.g. from a Prometheus source) stands.
    bare = metric("m", res=resource({}))
    assert labels(translator.series(series(bare, job="batch"))) == {"job": "batch"}


def test_scope_labels_on_and_off() -> None:
    scp = INTERNER.intern_scope(
        "io.opentelemetry.http", "2.1", sorted_attributes({"lib.tier": "web"}), "https://s/1.2"
    )
    m = metric("m", scp=scp)
    assert labels(PrometheusTranslator().series(series(m, a="1"))) == {
        "a": "1",
        "job": "svc",
        "otel_scope_name": "io.opentelemetry.http",
        "otel_scope_version": "2.1",
        "otel_scope_schema_url": "https://s/1.2",
        "otel_scope_lib_tier": "web",
    }
    assert labels(PrometheusTranslator(enable_scope_labels=False).series(series(m, a="1"))) == {
        "a": "1",
        "job": "svc",
    }
    # Empty version: no label (an empty label value is no label in Prometheus).
    assert "otel_scope_version" not in labels(
        PrometheusTranslator().series(series(metric("m", scp=scope("lib", ""))))
    )


def test_resource_attributes_are_copied_when_asked_and_never_win() -> None:
    res = resource({"service.name": "api", "host.name": "h1", "cloud.region": "eu", "k": "res"})
    m = metric("m", res=res)
    selected = PrometheusTranslator(enable_scope_labels=False, resource_attributes=["host.name"])
    assert labels(selected.series(series(m))) == {"job": "api", "host_name": "h1"}
    everything = PrometheusTranslator(
        enable_scope_labels=False, resource_to_telemetry_conversion=True
    )
    assert labels(everything.series(series(m, k="point"))) == {
        "job": "api",
        "host_name": "h1",
        "cloud_region": "eu",
        "k": "point",
    }


def test_const_labels_fill_in_but_never_override() -> None:
    translator = PrometheusTranslator(
        enable_scope_labels=False, const_labels={"env": "prod", "dc": "x"}
    )
    m = metric("m")
    assert labels(translator.series(series(m, env="dev"))) == {
        "job": "svc",
        "env": "dev",
        "dc": "x",
    }


def test_colliding_attribute_keys_are_joined_in_key_order() -> None:
    translator = PrometheusTranslator(enable_scope_labels=False)
    view = translator.series(series(metric("m"), **{"a.b": "1", "a_b": "2", "a-b": "3"}))
    # Sorted original keys: a-b, a.b, a_b.
    assert labels(view)["a_b"] == "3;1;2"


def test_reserved_and_type_labels_are_renamed() -> None:
    translator = PrometheusTranslator(enable_scope_labels=False)
    hist = metric("h", HISTOGRAM, "", CUMULATIVE, False)
    summ = metric("s", MetricKind.SUMMARY)
    assert "exported_le" in labels(translator.series(series(hist, le="x")))
    assert "exported_quantile" in labels(translator.series(series(summ, quantile="x")))
    assert "le" in labels(translator.series(series(metric("g"), le="x")))
    renamed = labels(translator.series(series(metric("g"), __name__="x")))
    assert "__name__" not in renamed and "x" in renamed.values()


def test_invalid_keys_and_empty_values_leave_only_their_label() -> None:
    translator = PrometheusTranslator(enable_scope_labels=False)
    view = translator.series(series(metric("m"), **{"_": "a", "": "b", "ok": "c", "empty": ""}))
    assert labels(view) == {"job": "svc", "ok": "c"}


def test_label_names_are_sorted_and_shared() -> None:
    translator = PrometheusTranslator(enable_scope_labels=False)
    m = metric("m")
    one = translator.series(series(m, b="1", a="1"))
    two = translator.series(series(m, b="2", a="2"))
    assert isinstance(one, SeriesView) and isinstance(two, SeriesView)
    assert one.label_names == ("a", "b", "job")
    assert one.label_names is two.label_names
    assert one.label_text() == 'a="1",b="1",job="svc"'


def test_answers_are_cached_per_object() -> None:
    translator = PrometheusTranslator()
    m = metric("http.requests", SUM, "1", CUMULATIVE, True)
    s = series(m, a="1")
    assert translator.family(m) is translator.family(m)
    assert translator.series(s) is translator.series(s)
    bad = series(metric("@@@"))
    assert translator.series(bad) is translator.series(bad)
    translator.forget(s)
    assert translator.series(s) is not None


@pytest.mark.parametrize(
    ("kind", "temporality", "monotonic", "name", "expected"),
    [
        (GAUGE, UNSPECIFIED, False, "cpu.utilization", ("cpu_utilization_ratio", "gauge")),
        (SUM, CUMULATIVE, True, "objects", ("objects_total", "counter")),
        (SUM, DELTA, True, "objects", ("objects_total", "counter")),
        (SUM, CUMULATIVE, False, "in.use", ("in_use_ratio", "gauge")),
        (SUM, DELTA, False, "in.use", "delta_non_monotonic_sum"),
        (SUM, UNSPECIFIED, True, "objects", "unspecified_temporality"),
        (HISTOGRAM, DELTA, False, "size", ("size", "histogram")),
        (MetricKind.EXPONENTIAL_HISTOGRAM, CUMULATIVE, False, "size", ("size", "histogram")),
        (MetricKind.SUMMARY, UNSPECIFIED, False, "size", ("size", "summary")),
        (GAUGE, UNSPECIFIED, False, "@_#_$_%", "invalid_metric_name"),
        (MetricKind.SUMMARY, UNSPECIFIED, False, "target.info", "reserved_metric_name"),
    ],
)
def test_family_types_and_verdicts(
    kind: MetricKind,
    temporality: Temporality,
    monotonic: bool,
    name: str,
    expected: tuple[str, str] | str,
) -> None:
    m = INTERNER.intern_metric(resource(), scope(), name, "1", kind, temporality, monotonic)
    answer = PrometheusTranslator().family(m)
    if isinstance(expected, str):
        assert isinstance(answer, Dropped) and answer.reason == expected
    else:
        view = family(answer)
        assert (view.name, view.type.value) == expected


@pytest.mark.parametrize(
    ("kind", "name", "unit", "expected_unit"),
    [
        (HISTOGRAM, "http.duration", "s", "seconds"),
        (SUM, "io", "By", "bytes"),
        (GAUGE, "rate", "By/s", "bytes_per_second"),
        (GAUGE, "ratio", "1", ""),
        (GAUGE, "packets", "{packet}", ""),
        (SUM, "network_transmitted_bytes_total", "By", "bytes"),
        (GAUGE, "custom", "km/h", "km_per_hour"),
    ],
)
def test_openmetrics_unit_only_when_the_name_ends_in_it(
    kind: MetricKind, name: str, unit: str, expected_unit: str
) -> None:
    m = metric(name, kind, unit, CUMULATIVE, kind is SUM)
    assert family(PrometheusTranslator().family(m)).unit == expected_unit


def test_namespace_help_and_unit_normalisation() -> None:
    m = metric("op.time", HISTOGRAM, "ms", CUMULATIVE, False, description="Time per op.")
    plain = family(PrometheusTranslator(namespace="app").family(m))
    assert (plain.name, plain.help, plain.scale) == ("app_op_time_milliseconds", "Time per op.", 1)
    normal = family(PrometheusTranslator(normalize_units=True).family(m))
    assert (normal.name, normal.unit, normal.scale) == ("op_time_seconds", "seconds", 1e-3)
    assert family(PrometheusTranslator().family(metric("x.y"))).help == "x.y"


def test_target_info_holds_the_other_resource_attributes() -> None:
    translator = PrometheusTranslator()
    res = resource(
        {
            "service.name": "api",
            "service.namespace": "shop",
            "service.instance.id": "i-1",
            "host.name": "h",
            "job": "odd",
            "process.pid": 42,
        }
    )
    info = translator.target_info(res)
    assert info is not None
    assert info.key == ("shop/api", "i-1")
    assert dict(zip(info.label_names, info.label_values, strict=True)) == {
        "job": "shop/api",
        "instance": "i-1",
        "exported_job": "odd",
        "host_name": "h",
        "process_pid": "42",
    }
    assert translator.target_info(res) is info
    assert translator.target_info(resource({"service.name": "api"})) is None


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("x", "x"),
        (True, "true"),
        (False, "false"),
        (42, "42"),
        (1.0, "1"),
        (0.25, "0.25"),
        (1e20, "100000000000000000000"),
        (math.inf, "+Inf"),
        (math.nan, "NaN"),
        (None, ""),
        (("a", 1, True, 1.5), '["a",1,true,1.5]'),
        (("é",), '["é"]'),
    ],
)
def test_attribute_values_as_label_values(value: object, text: str) -> None:
    assert attribute_text(value) == text  # type: ignore[arg-type]


def test_series_cache_is_bounded() -> None:
    translator = PrometheusTranslator(max_series=2)
    m = metric("m")
    first = translator.series(series(m, a="1"))
    translator.series(series(m, a="2"))
    translator.series(series(m, a="3"))  # the cache starts over
    assert translator.series(series(m, a="1")) is not first


def test_family_type_enum_values() -> None:
    assert [t.value for t in FamilyType] == ["counter", "gauge", "histogram", "summary", "unknown"]


def test_native_prometheus_series_pass_through() -> None:
    translator = PrometheusTranslator(const_labels={"env": "prod"})
    res = resource({"service.name": "api", "host.name": "h"})
    m = INTERNER.intern_metric(
        res, scope(), "http_requests_total", "", SUM, CUMULATIVE, True, native_prometheus=True
    )
    view = translator.series(series(m, job="node", instance="h:9100", __tmp="x", code="200"))
    assert isinstance(view, SeriesView)
    assert (view.family.name, view.family.type) == ("http_requests_total", FamilyType.COUNTER)
    assert dict(view.labels) == {"job": "node", "instance": "h:9100", "code": "200", "env": "prod"}
    hist = INTERNER.intern_metric(
        res, scope(), "rpc_seconds", "s", HISTOGRAM, CUMULATIVE, False, native_prometheus=True
    )
    assert family(translator.family(hist)).unit == "seconds"
    bad = INTERNER.intern_metric(res, scope(), "not valid", "", GAUGE, native_prometheus=True)
    answer = translator.family(bad)
    assert isinstance(answer, Dropped) and answer.reason == "invalid_metric_name"


NATIVE_KEYS = st.sampled_from(["job", "a", "B", "le", "quantile", "__tmp", "a.b", "é", "x_1", "_y"])
NATIVE_VALUES = st.one_of(st.sampled_from(["", "v", "1"]), st.integers(-3, 3), st.booleans())


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(NATIVE_KEYS, NATIVE_VALUES, max_size=6),
    st.sampled_from([GAUGE, SUM, HISTOGRAM, MetricKind.SUMMARY]),
)
def test_the_native_fast_path_gives_what_the_general_path_gives(
    attributes: dict[str, object], kind: MetricKind
) -> None:
    m = INTERNER.intern_metric(
        resource({"service.name": "api"}),
        scope(),
        "m",
        "",
        kind,
        CUMULATIVE,
        True,
        native_prometheus=True,
    )
    s = series(m, **attributes)
    fast = PrometheusTranslator()
    general = PrometheusTranslator()
    general._native_names_of = lambda *_: None  # type: ignore[method-assign]
    for _ in range(2):  # cold, then with the per-key-tuple answer cached
        got, want = fast.build_series(s), general.build_series(s)
        assert isinstance(got, SeriesView) and isinstance(want, SeriesView)
        assert (got.family, got.labels) == (want.family, want.labels)
        names = fast.native_labels(s, got.family)
        if names is not None:  # what relabel and remote-write take instead of a view
            assert (names, s.attributes) == (want.label_names, want.labels)
