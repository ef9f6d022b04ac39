"""OTLP series -> Prometheus series: family name and type, HELP, labels, `target_info`.

`PrometheusTranslator` answers three questions, each cached on the interned model object it is
about, so a steady stream costs one dict lookup per point:

- `family(metric)`: the family name, type, HELP and unit, or a `Dropped` verdict with a reason;
- `series(series)`: the sorted label set of one series (data point attributes, `job`/`instance`,
  scope labels, copied resource attributes, const labels), or `Dropped`;
- `target_info(resource)`: the `target_info` labels of a resource, or None when it has none.

Label precedence, highest first: the labels the translation owns (`job` and `instance` from the
resource, `otel_scope_*`), then data point attributes, then copied resource attributes, then const
labels. A data point attribute that maps to an owned label (or to `le` on a histogram, `quantile` on
a summary, or to a reserved `__x__` name) is kept as `exported_<name>`, as Prometheus does for a
scraped label that clashes with a target label. Attributes whose key has no label name are left
out (the series is kept). Empty label values are dropped: Prometheus treats `k=""` as no label.

A `native_prometheus` series (Prometheus-speaking receivers, relabel and aggregate output) is in
Prometheus form already: its name is the family name (if valid), its attributes its labels
(`__`-prefixed ones left out). Options that add to a name or label set still apply, so a processor
never switches them off: `namespace` prefixes it; copied resource attributes (of its metric's
resource: relabel keeps the input's, receivers and aggregate have none) and const labels are added
where it lacks the label. Nothing else is added (no `job`/`instance`, scope labels, suffixes).

Longer than most modules, and kept whole on purpose: the label precedence above is one rule that
`series`, `target_info` and the native path each apply through the same per-(resource, scope)
base labels and label-name cache; split, the precedence could no longer be checked in one read.
The pieces with no state of their own already live apart (`families`, `labels`, `names`, `units`,
`attributes`, `views`).

A new series of an attribute shape seen before skips the rule label by label: `plans` records, per
shape, which label each attribute becomes and which base labels join it (tested to give what the
rule gives).

Invariant: no method raises on the hot path; a name that cannot be translated is a cached
`Dropped` verdict, and every returned name and label name matches `METRIC_NAME_RE` and
`LABEL_NAME_RE`. The translator is exporter-agnostic: it knows nothing of pages or requests.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from metricgate.model import (
    Attributes,
    AttributeValue,
    Metric,
    Resource,
    Scope,
    Series,
)
from metricgate.model.caches import register
from metricgate.translate.attributes import attribute_text, render_labels
from metricgate.translate.families import (
    Dropped,
    FamilyType,
    FamilyView,
    family_type,
    unit_word,
)
from metricgate.translate.labels import (
    InvalidLabelNameError,
    merge_label_pairs,
    prometheus_label_name,
)
from metricgate.translate.names import (
    METRIC_NAME_RE,
    InvalidMetricNameError,
    prometheus_metric_name,
)
from metricgate.translate.plans import LabelPlans
from metricgate.translate.units import normalize_unit
from metricgate.translate.views import SeriesView, TargetInfo

__all__ = [
    "TARGET_INFO",
    "Dropped",
    "FamilyType",
    "FamilyView",
    "PrometheusTranslator",
    "SeriesView",
    "TargetInfo",
    "attribute_text",
    "render_labels",
]

TARGET_INFO: Final = "target_info"
_SERVICE_NAME = "service.name"
_SERVICE_NAMESPACE = "service.namespace"
_SERVICE_INSTANCE_ID = "service.instance.id"
_IDENTIFYING = frozenset((_SERVICE_NAME, _SERVICE_NAMESPACE, _SERVICE_INSTANCE_ID))
_RESERVED_NAMES = frozenset((TARGET_INFO, f"{TARGET_INFO}_total"))
"""Names that would collide with `target_info` (a counter's OpenMetrics family drops `_total`)."""
_MAX_CACHED = 100_000
"""Bound on each per-metric, per-resource and per-key cache; past it that cache starts over. All
of them, and the `series()` cache, are also emptied when the memory limiter releases caches."""


@dataclass(frozen=True, slots=True)
class _Base:
    """Labels every series of one (resource, scope) pair shares."""

    owned: tuple[tuple[str, str], ...]
    fallback: tuple[tuple[str, str], ...]


class PrometheusTranslator:
    """Translates interned model objects into Prometheus terms, caching every answer.

    Options: `namespace` prefixes metric names; `add_unit_suffixes` appends unit, `_total` and
    `_ratio` suffixes; `resource_to_telemetry_conversion` copies every resource attribute onto
    every series, `resource_attributes` only those named; `enable_scope_labels` adds the
    `otel_scope_*` labels; `const_labels` are added to every series lacking them;
    `normalize_units` exposes scaled time and size units in seconds and bytes (see
    `metricgate.translate.units`). `max_series` bounds the `series()` cache: past it the cache
    starts over (owners that keep their own per-series state use `build_series` instead).
    """

    def __init__(
        self,
        *,
        namespace: str = "",
        add_unit_suffixes: bool = True,
        resource_to_telemetry_conversion: bool = False,
        resource_attributes: Iterable[str] = (),
        enable_scope_labels: bool = True,
        const_labels: Mapping[str, str] | None = None,
        normalize_units: bool = False,
        max_series: int = 1_000_000,
    ) -> None:
        self.namespace = namespace
        self.add_unit_suffixes = add_unit_suffixes
        self.resource_to_telemetry_conversion = resource_to_telemetry_conversion
        self.resource_attributes = frozenset(resource_attributes)
        self.enable_scope_labels = enable_scope_labels
        self.const_labels = tuple(sorted((const_labels or {}).items()))
        self.normalize_units = normalize_units
        self.max_series = max_series
        self._families: dict[Metric, FamilyView | Dropped] = {}
        self._series: dict[Series, SeriesView | Dropped] = {}
        self._bases: dict[tuple[Resource, Scope], _Base] = {}
        self._targets: dict[Resource, TargetInfo | None] = {}
        self._label_names: dict[str, str | None] = {}
        self._name_tuples: dict[tuple[str, ...], tuple[str, ...]] = {}
        self._native_names: dict[tuple[tuple[str, ...], str], tuple[str, ...] | None] = {}
        """Attribute keys of native series (and family type) -> the label names, when the keys
        are those names already (valid, sorted, none reserved): such a series' labels are its
        attributes as they are."""
        # Series already in Prometheus form without a resource get only the const labels added.
        self._native_base = _Base((), self.const_labels)
        self._plans = LabelPlans()
        """How series of a known attribute shape get their labels (see `plans`)."""
        register(self)

    def release(self) -> int:
        """Forget every cached answer (the memory limiter's call); the number forgotten."""
        count = len(self)
        self._series.clear()
        self._start_over()
        return count

    def __len__(self) -> int:
        return len(self._series) + len(self._families) + len(self._bases) + len(self._targets)

    # -- metric level ------------------------------------------------------------------------

    def family(self, metric: Metric) -> FamilyView | Dropped:
        """The family `metric` belongs to, or why it is dropped (cached per Metric)."""
        found = self._families.get(metric)
        if found is None:
            if len(self._families) >= _MAX_CACHED:
                self._start_over()
            found = self._families[metric] = self._build_family(metric)
        return found

    def _start_over(self) -> None:
        """Forget every per-metric, per-resource and per-key answer (they are rebuilt on use)."""
        self._families.clear()
        self._bases.clear()
        self._targets.clear()
        self._label_names.clear()
        self._name_tuples.clear()
        self._native_names.clear()

    def _build_family(self, metric: Metric) -> FamilyView | Dropped:
        kind = family_type(metric)
        if isinstance(kind, Dropped):
            return kind
        if metric.native_prometheus:
            if not METRIC_NAME_RE.match(metric.name):
                return Dropped("invalid_metric_name", f"metric {metric.name!r} is no valid name")
            name = metric.name
            if self.namespace and name != TARGET_INFO:
                name = f"{self.namespace}_{name}"
            help_text = metric.description or metric.name
            return FamilyView(name, kind, help_text, unit_word(metric.unit, name, kind))
        unit, scale = metric.unit, 1.0
        if self.normalize_units:
            unit, scale = normalize_unit(unit)
        try:
            name = prometheus_metric_name(
                metric.name,
                unit,
                counter=kind is FamilyType.COUNTER,
                gauge=kind is FamilyType.GAUGE,
                namespace=self.namespace,
                add_suffixes=self.add_unit_suffixes,
            )
        except InvalidMetricNameError as exc:
            return Dropped("invalid_metric_name", f"metric {metric.name!r}: {exc}")
        if name in _RESERVED_NAMES:
            return Dropped("reserved_metric_name", f"metric {metric.name!r} maps to {name}")
        return FamilyView(
            name=name,
            type=kind,
            help=metric.description or metric.name,
            unit=unit_word(unit, name, kind),
            scale=scale,
        )

    # -- series level ------------------------------------------------------------------------

    def series(self, series: Series) -> SeriesView | Dropped:
        """`series` in Prometheus terms, or why it is dropped (cached per Series)."""
        found = self._series.get(series)
        if found is None:
            if len(self._series) >= self.max_series:
                self._series.clear()
            found = self._series[series] = self.build_series(series)
        return found

    def forget(self, series: Series) -> None:
        """Drop the cached answer for `series` (its owner saw it go stale)."""
        self._series.pop(series, None)

    def build_series(self, series: Series) -> SeriesView | Dropped:
        """Like `series()`, without caching the per-series answer."""
        metric = series.metric
        family = self.family(metric)
        if isinstance(family, Dropped):
            return family
        if metric.native_prometheus:
            base = self._native_base_of(metric)
            if not base.fallback:
                names = self._native_names_of(series.attributes, family.type, series.label_names)
                if names is not None:
                    return SeriesView(
                        family,
                        names,
                        None,
                        metric.resource,
                        series.attributes,  # type: ignore[arg-type]  # checked: strings
                    )
        else:
            base = self._base(metric.resource, metric.scope)
            attributes = series.attributes
            keys = tuple([key for key, _ in attributes])
            plan = self._plans.find(base, family.type, keys, self._labels_of, self._shared)
            if plan is not None:
                texts = [
                    value if value.__class__ is str else attribute_text(value)
                    for _, value in attributes
                ]
                if all(texts):  # an empty one leaves its label out: the direct path says how
                    return SeriesView(family, plan.names, plan.values(texts), metric.resource)
        labels = self._labels_of(series.attributes, base, family.type, metric.native_prometheus)
        names = self._shared(tuple(sorted(n for n, v in labels.items() if v)))
        return SeriesView(family, names, tuple(labels[n] for n in names), metric.resource)

    def _shared(self, names: tuple[str, ...]) -> tuple[str, ...]:
        """The one tuple of these label names (a million series of a metric share it)."""
        if len(self._name_tuples) >= _MAX_CACHED:
            self._name_tuples.clear()
        return self._name_tuples.setdefault(names, names)

    def _labels_of(
        self,
        attributes: Iterable[tuple[str, AttributeValue]],
        base: _Base,
        kind: FamilyType,
        native: bool = False,
    ) -> dict[str, str]:
        """The label precedence (module docstring): labels by name, empty values included."""
        reserved = {name for name, _ in base.owned}
        if kind is FamilyType.HISTOGRAM:
            reserved.add("le")
        elif kind is FamilyType.SUMMARY:
            reserved.add("quantile")
        labels = _merged(self._label_pairs(attributes, reserved, native))
        labels.update(base.owned)
        for name, value in base.fallback:
            labels.setdefault(name, value)
        return labels

    def _native_base_of(self, metric: Metric) -> _Base:
        """What a native series of `metric` gets added: copied resource attributes (the
        resource's, as any series of it gets them) and const labels, where it lacks the label."""
        resource = metric.resource
        if not resource.attributes or not (
            self.resource_to_telemetry_conversion or self.resource_attributes
        ):
            return self._native_base
        return _Base((), self._base(resource, metric.scope).fallback)

    def native_labels(self, series: Series, family: FamilyView) -> tuple[str, ...] | None:
        """The label names of a native series whose labels are its attributes as they are, or
        None (then `build_series` decides). The common case of data that came in as Prometheus
        data, answered without building a view: `family` is its metric's, nothing is to be added
        (no resource attributes or const labels to copy), and every attribute is a non-empty
        string under a valid, unreserved label name."""
        metric = series.metric
        if not metric.native_prometheus or self._native_base_of(metric).fallback:
            return None
        return self._native_names_of(series.attributes, family.type, series.label_names)

    def labels(
        self, series: Series, family: FamilyView
    ) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]] | Dropped:
        """The label names and labels of `series` (of `family`), or why it is dropped: a
        native series' attributes as they are when they can be (`native_labels`), without
        building a view; else its view's."""
        names = self.native_labels(series, family)
        if names is not None:
            return names, series.attributes  # type: ignore[return-value]  # checked: strings
        view = self.build_series(series)
        if isinstance(view, Dropped):
            return view
        return view.label_names, view.labels

    def _native_names_of(
        self, attributes: Attributes, kind: FamilyType, keys: tuple[str, ...] | None = None
    ) -> tuple[str, ...] | None:
        """The label names of native `attributes` taken as they are; None when they cannot be
        (non-string or empty values, keys that need translating). `keys`: the attribute keys,
        known to have non-empty string values (`Series.label_names`)."""
        if keys is None:
            keys = tuple([key for key, value in attributes if value.__class__ is str and value])
            if len(keys) != len(attributes):
                return None  # a value that is empty or not a string
        reserved = (
            "le"
            if kind is FamilyType.HISTOGRAM
            else "quantile"
            if kind is FamilyType.SUMMARY
            else ""
        )
        try:
            return self._native_names[keys, reserved]
        except KeyError:
            return self._clean_names(keys, reserved)

    def _clean_names(self, keys: tuple[str, ...], reserved: str) -> tuple[str, ...] | None:
        clean = list(keys) == sorted(set(keys)) and all(
            self._label_name(key) == key and not key.startswith("__") and key != reserved
            for key in keys
        )
        if len(self._native_names) >= _MAX_CACHED:
            self._native_names.clear()
        names = self._shared(keys) if clean else None
        self._native_names[keys, reserved] = names
        return names

    def _label_pairs(
        self,
        attributes: Iterable[tuple[str, AttributeValue]],
        reserved: set[str],
        native: bool = False,
    ) -> list[tuple[str, str]]:
        pairs = []
        for key, value in attributes:
            name = self._label_name(key)
            if name is None or (native and key.startswith("__")):
                continue
            if name in reserved or name.startswith("__"):
                name = self._label_name(f"exported_{name}") or "exported"
            pairs.append((name, attribute_text(value)))
        return pairs

    def _label_name(self, key: str) -> str | None:
        try:
            return self._label_names[key]
        except KeyError:
            pass
        if len(self._label_names) >= _MAX_CACHED:
            self._label_names.clear()
        try:
            name: str | None = prometheus_label_name(key)
        except InvalidLabelNameError:
            name = None
        self._label_names[key] = name
        return name

    def _base(self, resource: Resource, scope: Scope) -> _Base:
        found = self._bases.get((resource, scope))
        if found is not None:
            return found
        if len(self._bases) >= _MAX_CACHED:
            self._bases.clear()
        owned = dict(_job_instance(resource))
        if self.enable_scope_labels:
            scope_labels = dict(
                self._label_pairs(((f"otel_scope_{k}", v) for k, v in scope.attributes), set())
            )
            scope_labels.update(
                otel_scope_name=scope.name,
                otel_scope_version=scope.version,
                otel_scope_schema_url=scope.schema_url,
            )
            owned.update((k, v) for k, v in scope_labels.items() if k not in owned)
        copied = [
            (key, value)
            for key, value in resource.attributes
            if key not in _IDENTIFYING
            and (self.resource_to_telemetry_conversion or key in self.resource_attributes)
        ]
        fallback = _merged(self._label_pairs(copied, set(owned)))
        for name, value in self.const_labels:
            fallback.setdefault(name, value)
        found = self._bases[(resource, scope)] = _Base(
            tuple((k, v) for k, v in owned.items() if v), tuple(fallback.items())
        )
        return found

    # -- resource level ----------------------------------------------------------------------

    def target_info(self, resource: Resource) -> TargetInfo | None:
        """The `target_info` series for `resource`; None when it has only identifying attributes."""
        try:
            return self._targets[resource]
        except KeyError:
            pass
        if len(self._targets) >= _MAX_CACHED:
            self._targets.clear()
        owned = _job_instance(resource)
        others = [(k, v) for k, v in resource.attributes if k not in _IDENTIFYING]
        found = None
        if others:
            labels = _merged(self._label_pairs(others, {k for k, _ in owned}))
            labels.update(owned)
            names = tuple(sorted(n for n, v in labels.items() if v))
            job_instance = dict(owned)
            found = TargetInfo(
                (job_instance.get("job", ""), job_instance.get("instance", "")),
                names,
                tuple(labels[n] for n in names),
            )
        self._targets[resource] = found
        return found


def _merged(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """Label pairs (already translated names) as a dict; colliding names joined with `;`."""
    labels = dict(pairs)
    if len(labels) == len(pairs):
        return labels
    # Names are final already (translation is idempotent); the sort is stable, so the values
    # are joined in the order of the original, sorted, attribute keys.
    return dict(merge_label_pairs(pairs))


def _job_instance(resource: Resource) -> list[tuple[str, str]]:
    """`job` (`service.namespace/service.name`) and `instance` (`service.instance.id`)."""
    name = attribute_text(resource.get(_SERVICE_NAME))
    namespace = attribute_text(resource.get(_SERVICE_NAMESPACE))
    instance = attribute_text(resource.get(_SERVICE_INSTANCE_ID))
    out = []
    if name or namespace:
        # Semantic conventions: a service without a name is `unknown_service`.
        job = name or "unknown_service"
        out.append(("job", f"{namespace}/{job}" if namespace else job))
    if instance:
        out.append(("instance", instance))
    return out
