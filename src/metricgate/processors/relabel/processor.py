"""The `relabel` processor: Prometheus relabel_configs applied to every series' Prometheus view.

Each input series is seen as the Prometheus exporters show it (`PrometheusTranslator`, default
options): the family name as `__name__` (histograms and summaries: the base name, without
`_bucket`/`_sum`/`_count`; `le` and `quantile` are not part of the view) and the label set with
`job`, `instance` and `otel_scope_*`; a `native_prometheus` series keeps its name and labels. The
rules run once per input series and the verdict is cached per input `Series`: the output
`Series` (one object, held by the cache, so not interned again) or a `Drop`. A steady stream
costs one dict lookup per point, and an input metric whose series all map into one output
metric is forwarded by sharing its value lists.

A series the rules leave exactly as they saw it (same name, same labels) goes on as it came: its
verdict is the input series itself. So a relabel processor that changes nothing changes nothing
downstream either: every exporter translates such a series with its own options (`namespace`,
`resource_attributes`, scope labels, suffixes) exactly as without the processor. A series the
rules changed becomes a `native_prometheus` metric named by the resulting `__name__` with the
input's resource, scope, kind, temporality, unit and description (its OTLP name when it has none
and the rules kept its name: that is what HELP showed), and attributes = the resulting labels
minus `__name__`; the Prometheus exporters still add their `namespace`, copied resource attributes
and const labels to it (see `metricgate.translate.series`).

Dropped points are counted by reason: `dropped_by_rule`, `invalid_metric_name`,
`invalid_label_name`, `duplicate_series` (the rules made two input series one output name and
label set within a batch; the first keeps its points), the translator's reason for series without a
Prometheus view, or `relabel_error` (an exception while relabeling one series: a bug). All but
`dropped_by_rule` are also logged, at most once per reason every 10 seconds.

Invariant: the cache (and the bookkeeping derived from it) holds at most `max_cached_series` plus
one metric group's series; before it would grow past that, everything is forgotten at once and
rebuilt from the next batches. `_uniform[m]` names an output metric only while every cached series
of input metric `m` that is kept maps into it; `_lossy` holds every input metric with a cached drop;
`_contested` holds the output identity (name, labels as the exporters show them) of every verdict
that more than one input series produces.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from itertools import compress, repeat
from operator import is_, not_
from typing import TYPE_CHECKING, Final

from metricgate.model import (
    INTERNER,
    Attributes,
    Batch,
    Metric,
    MetricKind,
    MetricPoints,
    Series,
)
from metricgate.pipeline.component import Consumer, Processor
from metricgate.pipeline.registry import processor_factory
from metricgate.processors.relabel.config import RelabelConfig
from metricgate.relabel.rules import Drop, LabelPairs, RuleSet
from metricgate.translate.series import Dropped, PrometheusTranslator

if TYPE_CHECKING:
    from prometheus_client import Counter as PromCounter

    from metricgate.pipeline.host import Host

log = logging.getLogger(__name__)

LOG_INTERVAL_S: Final = 10.0
_RESERVED: Final = {
    MetricKind.HISTOGRAM: "le",
    MetricKind.EXPONENTIAL_HISTOGRAM: "le",
    MetricKind.SUMMARY: "quantile",
}

Verdict = Series | Drop
Identity = tuple[str, Attributes]
"""What makes two output series one on a Prometheus page: metric name and labels."""


class RelabelProcessor(Processor):
    """Relabels every series and forwards the result (see the module docstring)."""

    def __init__(self, component_id: str, config: RelabelConfig, next_consumer: Consumer) -> None:
        super().__init__(component_id, next_consumer)
        self.config = config
        self.rules = RuleSet(config.rules)
        self.dropped: Counter[str] = Counter()
        """Points dropped so far, by reason (also in own telemetry once started)."""
        self._dropped_metric: PromCounter | None = None
        self._translator = PrometheusTranslator()
        self._cache: dict[Series, Verdict] = {}
        self._owners: dict[Identity, Series] = {}
        """Output identity (name, labels) -> the first input series that produced it."""
        self._contested: dict[Series, Identity] = {}
        """Verdicts whose output identity more than one input series produce -> that identity."""
        self._contested_inputs: set[Metric] = set()
        """Input metrics with a series whose output is contested: checked point by point."""
        self._uniform: dict[Metric, Metric | None] = {}
        """Input metric -> the one output metric its kept cached series map to (None: mixed)."""
        self._lossy: set[Metric] = set()
        """Input metrics with a cached series that is dropped."""
        self._metrics: dict[tuple[Metric, str], Metric] = {}
        self._generation = 0
        """How many times the cache started over."""
        self._logged: dict[str, float] = {}
        self._suppressed: Counter[str] = Counter()

    async def start(self, host: Host) -> None:
        self._dropped_metric = host.telemetry.processor_dropped
        cached = host.telemetry.gauge(
            "metricgate_processor_relabel_cached_series",
            "Input series whose relabeling verdict the relabel processor has cached.",
            ["processor"],
        )
        self.observe(cached, lambda: {(self.component_id,): float(len(self._cache))})

    async def consume(self, batch: Batch) -> None:
        cache, uniform, lossy = self._cache, self._uniform, self._lossy
        contested_inputs = self._contested_inputs
        # Verdicts for the whole batch first, so that a series seen for the first time marks its
        # output as contested before any point of that output is forwarded.
        all_verdicts: list[list[Verdict]] = []
        generation = self._generation
        for points in batch.metrics:
            found = list(map(cache.get, points.series))
            missing = list(map(is_, found, repeat(None)))
            if True in missing:
                all_verdicts.append(self._resolve(points.series, found, missing))
            else:
                all_verdicts.append(found)  # type: ignore[arg-type]  # no None in it
        # If the cache started over meanwhile, `_uniform` may not cover the earlier groups.
        forgot = generation != self._generation
        out: dict[Metric, list[MetricPoints]] = {}
        dropped: Counter[str] = Counter()
        owners: dict[Identity, Series] = {}
        for points, verdicts in zip(batch.metrics, all_verdicts, strict=True):
            metric = points.metric
            target = uniform.get(metric)
            if target is None or forgot or metric in contested_inputs:
                self._split(points, verdicts, out, dropped, owners)
            elif metric not in lossy:
                # Every series of this metric maps into `target`: share the input's lists.
                shared = MetricPoints(
                    target,
                    verdicts,  # type: ignore[arg-type]  # no Drop among them
                    points.values,
                    points.timestamps,
                    points.start_timestamps,
                    points.flags,
                    points.exemplars,
                )
                _add(out, shared)
            else:
                kept = [v.__class__ is not Drop for v in verdicts]
                dropped.update(v.reason for v in compress(verdicts, map(not_, kept)))  # type: ignore[union-attr]
                if any(kept):
                    group = points.compress(kept)
                    group.metric = target
                    group.series = list(compress(verdicts, kept))  # type: ignore[arg-type]
                    _add(out, group)
        if dropped:
            self.dropped.update(dropped)
            if self._dropped_metric is not None:
                for reason, count in dropped.items():
                    self._dropped_metric.labels(self.component_id, reason).inc(count)
        if out:
            await self.next_consumer.consume(Batch([_merge(parts) for parts in out.values()]))

    def _split(
        self,
        points: MetricPoints,
        verdicts: list[Verdict],
        out: dict[Metric, list[MetricPoints]],
        dropped: Counter[str],
        owners: dict[Identity, Series],
    ) -> None:
        """The general path: drops, several output metrics, contested output series."""
        contested = self._contested
        by_metric: dict[Metric, tuple[list[int], list[Series]]] = {}
        for index, verdict in enumerate(verdicts):
            if isinstance(verdict, Drop):
                dropped[verdict.reason] += 1
                continue
            identity = contested.get(verdict)
            if identity is not None:
                source = points.series[index]
                first = owners.setdefault(identity, source)
                if first is not source and first != source:
                    dropped["duplicate_series"] += 1
                    self._log(
                        "duplicate_series",
                        f"{source!r} and {first!r} both become {verdict!r}; keeping the first",
                    )
                    continue
            indexes, outputs = by_metric.setdefault(verdict.metric, ([], []))
            indexes.append(index)
            outputs.append(verdict)
        for metric, (indexes, outputs) in by_metric.items():
            group = points.select(indexes)
            group.metric = metric
            group.series = outputs
            _add(out, group)

    def _resolve(
        self, series: list[Series], verdicts: list[Verdict | None], missing: list[bool]
    ) -> list[Verdict]:
        """The cold path: relabel the series whose `verdicts` are missing (None); return all
        verdicts (those found stay valid if the cache starts over here)."""
        cache = self._cache
        if len(cache) + missing.count(True) > self.config.max_cached_series:
            self._forget()
        for index in compress(range(len(series)), missing):
            one = series[index]
            verdict = cache.get(one)  # the same series twice in one group: relabeled once
            if verdict is None:
                verdict = cache[one] = self._relabel(one)
            verdicts[index] = verdict
        return verdicts  # type: ignore[return-value]  # no None is left

    def _relabel(self, series: Series) -> Verdict:
        metric = series.metric
        found = self._prometheus_labels(series)
        verdict: Verdict
        if isinstance(found, Dropped):
            verdict = Drop(found.reason, found.detail)
        else:
            name, names, labels = found
            try:
                result = self.rules.apply_view(name, names, labels)
            except Exception as exc:  # a bug here must cost one series, never the batch
                result = Drop("relabel_error", f"{type(exc).__name__}: {exc}")
            if isinstance(result, Drop):
                verdict = result
            elif result[0] == name and result[1] == labels:
                verdict = series  # unchanged: it goes on as it came (see the module docstring)
            else:
                verdict = self._output(metric, *result)
        if isinstance(verdict, Drop):
            self._lossy.add(metric)
            if verdict.reason != "dropped_by_rule":
                self._log(verdict.reason, f"{series!r}: {verdict.detail}")
            return verdict
        identity: Identity = (verdict.metric.name, verdict.attributes)
        if verdict is series:  # kept as it came: its identity is the name and labels it has
            identity = (name, labels)
        first = self._owners.setdefault(identity, series)
        earlier = self._cache.get(first)
        # Two series the rules left alone collide as they would without this processor: the
        # exporters settle that; only a collision the rules made is this processor's to settle.
        if (
            first is not series
            and first != series
            and (verdict is not series or earlier is not first)
        ):
            self._contested[verdict] = identity
            if isinstance(earlier, Series):
                self._contested[earlier] = identity
            self._contested_inputs.update((metric, first.metric))
        if self._uniform.setdefault(metric, verdict.metric) is not verdict.metric:
            self._uniform[metric] = None
        return verdict

    def _prometheus_labels(
        self, series: Series
    ) -> tuple[str, tuple[str, ...], LabelPairs] | Dropped:
        """The series' metric name, label names and labels in Prometheus terms, or why it has
        none. Data that came in as Prometheus data is taken as it is, without building a view."""
        family = self._translator.family(series.metric)
        if isinstance(family, Dropped):
            return family
        found = self._translator.labels(series, family)
        if isinstance(found, Dropped):
            return found
        return family.name, *found

    def _output(
        self, metric: Metric, name: str, attributes: LabelPairs, names: tuple[str, ...]
    ) -> Verdict:
        kind = metric.kind
        if (
            kind is MetricKind.HISTOGRAM
            or kind is MetricKind.EXPONENTIAL_HISTOGRAM
            or kind is MetricKind.SUMMARY
        ):
            reserved = _RESERVED[kind]
            if any(label == reserved for label, _ in attributes):
                return Drop("invalid_label_name", f"{reserved!r} is reserved on {kind.name}")
        key = (metric, name)
        out_metric = self._metrics.get(key)
        if out_metric is None:
            # The exporters' HELP for a metric without description is its OTLP name: keep that
            # HELP for a metric the rules did not rename (a renamed one gets its new name).
            description = metric.description
            if not description and name == self._family_name(metric):
                description = metric.name
            out_metric = self._metrics[key] = INTERNER.intern_metric(
                metric.resource,
                metric.scope,
                name,
                metric.unit,
                metric.kind,
                metric.temporality,
                metric.monotonic,
                description,
                native_prometheus=True,
            )
        return Series(out_metric, attributes, names)  # the verdict cache holds it: not interned

    def _family_name(self, metric: Metric) -> str:
        family = self._translator.family(metric)
        return "" if isinstance(family, Dropped) else family.name

    def release(self) -> int:
        """Forget every cached verdict (the memory limiter's call); the number forgotten."""
        count = len(self._cache)
        self._forget()
        return count

    def __len__(self) -> int:
        return len(self._cache)

    def _forget(self) -> None:
        self._generation += 1
        for table in (self._cache, self._owners, self._uniform, self._metrics):
            table.clear()
        for found in (self._contested, self._contested_inputs, self._lossy):
            found.clear()

    def _log(self, reason: str, detail: str) -> None:
        now = time.monotonic()
        if now - self._logged.get(reason, -LOG_INTERVAL_S) < LOG_INTERVAL_S:
            self._suppressed[reason] += 1
            return
        self._logged[reason] = now
        suppressed = self._suppressed.pop(reason, 0)
        log.warning(
            "relabel dropped a series (%s): %s",
            reason,
            detail,
            extra={"processor": self.component_id, "reason": reason, "suppressed": suppressed},
        )


def _add(out: dict[Metric, list[MetricPoints]], points: MetricPoints) -> None:
    out.setdefault(points.metric, []).append(points)


def _merge(parts: list[MetricPoints]) -> MetricPoints:
    """One group from the groups of one output metric (input metrics that became one)."""
    if len(parts) == 1:
        return parts[0]
    merged = MetricPoints(parts[0].metric)
    for part in parts:
        offset = len(merged.series)
        merged.series += part.series
        merged.values += part.values
        merged.timestamps += part.timestamps
        merged.start_timestamps += part.start_timestamps
        merged.flags += part.flags
        for index, exemplars in (part.exemplars or {}).items():
            merged.add_exemplars(index + offset, exemplars)
    return merged


FACTORY = processor_factory(
    "relabel",
    RelabelConfig,
    RelabelProcessor,
    "Prometheus relabel_configs (with vmagent's extensions) on every series",
    stateless=True,
)
