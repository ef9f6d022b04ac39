"""Label plans and label templates: a series of a known attribute shape gets exactly the labels
and label text that direct translation gives, whatever its keys, values and base labels."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metricgate.model import INTERNER, MetricKind, Series, Temporality, sorted_attributes
from metricgate.model.caches import release_caches
from metricgate.translate import PrometheusTranslator, SeriesView, render_labels
from metricgate.translate.plans import MAX_PLANS, LabelPlans
from tests.exporters.prometheus_points import resource, scope

KEYS = st.sampled_from(
    ["a", "b", "a.b", "a_b", "job", "instance", "le", "quantile", "__x", "x__", "1st", "é", "z"]
)
VALUES = st.one_of(
    st.sampled_from(["", "v", "w", 'q"uote', "1"]),
    st.integers(-2, 2),
    st.booleans(),
    st.none(),
    st.tuples(st.integers(0, 2)),
)
RESOURCES = st.dictionaries(
    st.sampled_from(["service.name", "service.instance.id", "host.name", "a", "job", "k8s.pod"]),
    st.sampled_from(["", "api", "h1", "p"]),
    max_size=4,
)
KINDS = st.sampled_from(
    [MetricKind.GAUGE, MetricKind.SUM, MetricKind.HISTOGRAM, MetricKind.SUMMARY]
)
OPTIONS = st.fixed_dictionaries(
    {
        "enable_scope_labels": st.booleans(),
        "resource_to_telemetry_conversion": st.booleans(),
        "const_labels": st.dictionaries(
            st.sampled_from(["a", "env", "job", "z"]), st.sampled_from(["", "prod"]), max_size=2
        ),
    }
)


def series_of(
    kind: MetricKind, resource_attributes: dict[str, str], keys: list[str], values: list[object]
) -> Series:
    temporality = Temporality.UNSPECIFIED if kind is MetricKind.GAUGE else Temporality.CUMULATIVE
    m = INTERNER.intern_metric(
        resource(resource_attributes), scope(), "m", "", kind, temporality, kind is MetricKind.SUM
    )
    return Series(m, sorted_attributes(dict(zip(keys, values, strict=True))))  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(KEYS, unique=True, max_size=6),
    st.lists(st.lists(VALUES, min_size=6, max_size=6), min_size=3, max_size=5),
    KINDS,
    RESOURCES,
    OPTIONS,
)
def test_planned_labels_are_the_direct_translation(
    keys: list[str],
    value_rows: list[list[object]],
    kind: MetricKind,
    resource_attributes: dict[str, str],
    options: dict[str, object],
) -> None:
    planned = PrometheusTranslator(**options)  # type: ignore[arg-type]
    for values in value_rows:  # the second series of the shape on take the plan
        one = series_of(kind, resource_attributes, keys, values[: len(keys)])
        got = planned.build_series(one)
        want = PrometheusTranslator(**options).build_series(one)  # type: ignore[arg-type]
        assert isinstance(got, SeriesView) and isinstance(want, SeriesView)
        assert (got.family, got.label_names, got.label_values) == (
            want.family,
            want.label_names,
            want.label_values,
        )
        assert got.label_text() == want.label_text()


def test_a_shape_is_planned_on_its_second_series_and_names_are_shared(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    translator = PrometheusTranslator(enable_scope_labels=False)
    rule = translator._labels_of
    calls: list[int] = []

    def counted(*args: Any) -> dict[str, str]:
        calls.append(1)
        return rule(*args)

    monkeypatch.setattr(translator, "_labels_of", counted)
    views = []
    for i in range(4):
        views.append(translator.build_series(series_of(MetricKind.GAUGE, {}, ["b", "a"], [i, "x"])))
        assert len(calls) == min(i + 1, 2)  # direct, then the plan made; then the plan alone
    assert all(isinstance(v, SeriesView) for v in views)
    assert views[0].label_names is views[3].label_names == ("a", "b")  # type: ignore[union-attr]
    assert views[3].label_values == ("x", "3")  # type: ignore[union-attr]


def test_colliding_keys_are_never_planned() -> None:
    translator = PrometheusTranslator(enable_scope_labels=False)
    views = [
        translator.build_series(series_of(MetricKind.GAUGE, {}, ["a.b", "a_b"], [f"{i}", "y"]))
        for i in range(3)
    ]
    assert [dict(v.labels)["a_b"] for v in views if isinstance(v, SeriesView)] == [
        "0;y",
        "1;y",
        "2;y",
    ]


def test_plans_are_bounded_and_released() -> None:
    plans = LabelPlans()
    base = object()

    def labels_of(attributes: Iterable[tuple[str, Any]], _base: Any, _kind: Any) -> dict[str, str]:
        return {key: str(value) for key, value in attributes}

    for i in range(MAX_PLANS + 5):
        for _ in range(2):
            plans.find(base, None, (f"k{i}",), labels_of, tuple)
        assert len(plans) <= MAX_PLANS
    release_caches()
    assert len(plans) == 0


LABEL_NAMES = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,6}", fullmatch=True)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(LABEL_NAMES, st.text(max_size=8)), max_size=6))
def test_label_text_from_a_template_is_the_escaped_text(pairs: list[tuple[str, str]]) -> None:
    names, values = tuple(n for n, _ in pairs), tuple(v for _, v in pairs)
    want = ",".join(
        '{}="{}"'.format(n, v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n"))
        for n, v in pairs
    )
    assert render_labels(names, values) == want  # maybe a new template
    assert render_labels(names, values) == want  # the template known
    assert render_labels(list(names), list(values)) == want
