"""The scrape page's state: the latest (or accumulated) value of every series, by family.

`Store.ingest(batch, now)` folds a batch in: gauges and cumulative sums and histograms keep their
last value; monotonic delta sums and delta histograms (explicit or exponential) are accumulated
into cumulative ones per series; summaries keep their last point. A point flagged
NO_RECORDED_VALUE removes its series; `expire(cutoff)` removes series not updated since `cutoff`.
`target_info` rows live as long as a series of their (job, instance) and tenant does.
`tenant_of(entry)` says whose an entry is (the resource attribute `tenant.id` the gateway stamps),
for pages that show a tenant only its own series.

`snapshot()` and `restore(batch, now)` carry the page across a graceful restart (values as shown,
not added to again; `metricgate.pipeline.snapshots`).

Each series is an `Entry` holding its rendered prefix (`name{labels} `, computed once, when the
series is new), so ingest costs one dict lookup and an attribute store per point, and rendering
only formats values (see `render.py`).

Invariants: one entry per distinct label set in a family (a second series that translates to the
same labels is dropped, counted, since a page must not hold duplicate series); the first type and
HELP a family name gets are kept until the family empties; nothing here awaits, so a batch is
folded in atomically with respect to scrapes and the expiry timer.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from dataclasses import replace
from typing import Literal

from metricgate.exporters.prometheus.entries import Entry, Family, PointEntry
from metricgate.exporters.prometheus.points import scaled
from metricgate.model import (
    FLAG_NO_RECORDED_VALUE,
    Batch,
    MetricKind,
    MetricPoints,
    Series,
    Temporality,
)
from metricgate.model.arithmetic import accumulate
from metricgate.pipeline.snapshots import SnapshotPoints
from metricgate.pipeline.snapshots import points as snapshot_points
from metricgate.tenants import TenantSplitter
from metricgate.translate import (
    TARGET_INFO,
    Dropped,
    FamilyType,
    FamilyView,
    PrometheusTranslator,
    SeriesView,
    TargetInfo,
)

log = logging.getLogger(__name__)

_LOG_EVERY_S = 60.0


class _Target:
    __slots__ = ("count", "entry")

    def __init__(self, entry: Entry) -> None:
        self.entry = entry
        self.count = 0


class Store:
    """All series of one scrape page (see module docstring).

    `exponential` is `convert` (expose as explicit buckets at render) or `drop`.
    `keep_timestamps` and `keep_exemplars` say whether the page will ever show them.
    """

    def __init__(
        self,
        translator: PrometheusTranslator,
        *,
        exponential: Literal["convert", "drop"] = "convert",
        keep_timestamps: bool = False,
        keep_exemplars: bool = True,
    ) -> None:
        self.translator = translator
        self.exponential = exponential
        self.keep_timestamps = keep_timestamps
        self.keep_exemplars = keep_exemplars
        self.families: dict[str, Family] = {}
        self._series: dict[Series, Entry] = {}
        self._rejected: dict[Series, str] = {}
        self._targets: dict[tuple[str, str, str], _Target] = {}
        self._target_tenants: dict[Entry, str] = {}
        self._tenants = TenantSplitter()
        self._logged: dict[str, float] = {}
        self._claims: dict[str, Family] = {}

    def __len__(self) -> int:
        return len(self._series)

    # -- ingest ------------------------------------------------------------------------------

    def ingest(self, batch: Batch, now: float) -> Counter[str]:
        """Fold `batch` in; `now` is a monotonic time. Returns dropped points by reason."""
        drops: Counter[str] = Counter()
        for group in batch.metrics:
            if group.series:
                self._ingest_group(group, now, drops)
        return drops

    def _ingest_group(self, group: MetricPoints, now: float, drops: Counter[str]) -> None:
        metric = group.metric
        view = self._view(group, drops)
        if view is None:
            return
        delta = metric.temporality is Temporality.DELTA
        if metric.kind in (MetricKind.GAUGE, MetricKind.SUM) and not delta and view.scale == 1.0:
            self._set_numbers(group, view, now, drops)
        else:
            self._update(group, view, now, drops, delta)
        if group.exemplars and self.keep_exemplars and view.type in _EXEMPLAR_TYPES:
            get = self._series.get
            for index, exemplars in group.exemplars.items():
                entry = get(group.series[index])
                if entry is not None and exemplars:
                    if view.scale != 1.0:
                        exemplars = tuple(replace(x, value=x.value * view.scale) for x in exemplars)
                    entry.exemplars = exemplars

    def _view(self, group: MetricPoints, drops: Counter[str]) -> FamilyView | None:
        """The family `group` goes into, or None (counted in `drops`) when it may not."""
        metric = group.metric
        view = self.translator.family(metric)
        if isinstance(view, Dropped):
            drops[view.reason] += len(group.series)
            return None
        if metric.kind is MetricKind.EXPONENTIAL_HISTOGRAM and self.exponential == "drop":
            drops["exponential_histogram"] += len(group.series)
            return None
        family = self.families.get(view.name)
        if family is None:
            holder = self._clash(view)
            if holder is not None:
                drops["name_conflict"] += len(group.series)
                self._log_once(
                    f"clash:{view.name}",
                    "metric dropped: its sample names clash with another family's",
                    metric=metric.name,
                    family=view.name,
                    other_family=holder.name,
                )
                return None
        elif family.type is not view.type:
            drops["type_conflict"] += len(group.series)
            self._log_once(
                f"type:{view.name}",
                "metric dropped: its family already has another type",
                metric=metric.name,
                family=view.name,
                type=view.type.value,
                existing_type=family.type.value,
            )
            return None
        return view

    def _set_numbers(
        self, group: MetricPoints, view: FamilyView, now: float, drops: Counter[str]
    ) -> None:
        """The common case, kept lean: last value wins, no scaling, no accumulation."""
        get = self._series.get
        keep_ts = self.keep_timestamps
        counter = view.type is FamilyType.COUNTER
        for series, value, timestamp, flags in zip(
            group.series, group.values, group.timestamps, group.flags, strict=True
        ):
            if counter and not value >= 0 and not flags & FLAG_NO_RECORDED_VALUE:  # type: ignore[operator]
                drops["invalid_counter_value"] += 1  # NaN or negative: no counter can say that
                continue
            entry = get(series)
            if entry is None or flags:
                if flags & FLAG_NO_RECORDED_VALUE:
                    if entry is not None:
                        self._remove(entry)
                    continue
                if entry is None:
                    entry = self._add(series, view, now, drops)
                    if entry is None:
                        continue
            entry.value = value
            entry.updated = now
            if keep_ts:
                entry.timestamp = timestamp

    def _update(
        self,
        group: MetricPoints,
        view: FamilyView,
        now: float,
        drops: Counter[str],
        delta: bool,
    ) -> None:
        get = self._series.get
        scale = view.scale
        counter = view.type is FamilyType.COUNTER
        for series, value, timestamp, start, flags in group.rows():
            entry = get(series)
            if flags & FLAG_NO_RECORDED_VALUE:
                if entry is not None:
                    self._remove(entry)
                continue
            if counter and not value >= 0:  # type: ignore[operator]
                drops["invalid_counter_value"] += 1
                continue
            if entry is None:
                entry = self._add(series, view, now, drops)
                if entry is None:
                    continue
            elif delta and start and start < entry.timestamp:
                drops["delta_overlap"] += 1  # a retried or overlapping interval: not added twice
                continue
            if scale != 1.0:
                value = scaled(value, scale)
            entry.value = accumulate(entry.value, value) if delta else value
            entry.updated = now
            entry.timestamp = timestamp

    def _add(
        self, series: Series, view: FamilyView, now: float, drops: Counter[str]
    ) -> Entry | None:
        """A new entry for `series`, or None (counted in `drops`) if it must be dropped."""
        reason = self._rejected.get(series)
        if reason is not None:
            drops[reason] += 1
            return None
        translated = self.translator.build_series(series)
        if isinstance(translated, Dropped):
            self._reject(series, translated.reason, drops)
            return None
        family = self.families.get(view.name) or self._new_family(
            view.name, view.type, view.help, view.unit
        )
        prefix = _prefix(translated)
        if prefix in family.entries:
            self._log_once(
                f"dup:{view.name}",
                "series dropped: another series already has the same labels",
                family=view.name,
                series=repr(series),
            )
            self._reject(series, "duplicate_series", drops)
            return None
        if view.type in (FamilyType.COUNTER, FamilyType.GAUGE):
            entry = Entry(series, family, prefix, now)
        else:
            entry = PointEntry(series, family, prefix, now)
            entry.scale = view.scale
        family.entries[prefix] = self._series[series] = entry
        self._track_target(series, +1)
        return entry

    def _reject(self, series: Series, reason: str, drops: Counter[str]) -> None:
        self._rejected[series] = reason
        drops[reason] += 1

    def _remove(self, entry: Entry) -> None:
        family = entry.family
        family.entries.pop(entry.prefix, None)
        if not family.entries and self.families.get(family.name) is family:
            del self.families[family.name]
            for name in _claims(family.name, family.type):
                if self._claims.get(name) is family:
                    del self._claims[name]
        if entry.series is not None:
            del self._series[entry.series]
            self._track_target(entry.series, -1)

    def tenant_of(self, entry: Entry) -> str:
        """The tenant whose series `entry` shows ("" for data no listener stamped)."""
        series = entry.series
        if series is None:
            return self._target_tenants.get(entry, "")
        return self._tenants.tenant(series.metric.resource) or ""

    def _track_target(self, series: Series, change: int) -> None:
        resource = series.metric.resource
        info = self.translator.target_info(resource)
        if info is None:
            return
        if series.metric.native_prometheus:
            # Relabel output keeps its resource: it still has a target_info, as long as its job
            # and instance are still the resource's (remote-write and aggregate output carry none).
            labels = dict(series.attributes)
            if (labels.get("job", ""), labels.get("instance", "")) != info.key:
                return
        # Per tenant too: two tenants' targets of one (job, instance) are two rows.
        tenant = self._tenants.tenant(resource) or ""
        key = (*info.key, tenant)
        target = self._targets.get(key)
        if target is None:
            if change < 0:
                return
            target = self._targets[key] = _Target(self._target_entry(info))
            if tenant:
                self._target_tenants[target.entry] = tenant
        target.count += change
        if target.count <= 0:
            del self._targets[key]
            self._target_tenants.pop(target.entry, None)
            self._remove(target.entry)

    def _target_entry(self, info: TargetInfo) -> Entry:
        family = self.families.get(TARGET_INFO) or self._new_family(
            TARGET_INFO, FamilyType.GAUGE, "Target metadata", ""
        )
        text = info.label_text()
        prefix = f"{TARGET_INFO}{{{text}}} " if text else f"{TARGET_INFO} "
        existing = family.entries.get(prefix)
        if existing is not None:
            return existing  # the same row, already sent in Prometheus form
        # Never stale by time: it goes when the last series of its target does.
        entry = family.entries[prefix] = Entry(None, family, prefix, math.inf)
        entry.value = 1.0
        return entry

    def _new_family(self, name: str, family_type: FamilyType, help_text: str, unit: str) -> Family:
        family = self.families[name] = Family(name, family_type, help_text, unit)
        for claimed in _claims(name, family_type):
            self._claims.setdefault(claimed, family)
        return family

    def _clash(self, view: FamilyView) -> Family | None:
        """The family already holding a name `view`'s family would use, if any."""
        for name in _claims(view.name, view.type):
            holder = self._claims.get(name)
            if holder is not None:
                return holder
        return None

    # -- snapshots (state across restarts) -----------------------------------------------------

    def snapshot(self) -> Batch:
        """Every series with the value the page shows (scaled, accumulated) and its timestamp."""
        points = SnapshotPoints()
        for series, entry in self._series.items():
            points.add(series, entry.value, entry.timestamp)
        return points.batch()

    def restore(self, batch: Batch, now: float) -> int:
        """Put back the series of a `snapshot` as they were (values are not scaled or added to
        again); they count as updated at `now`. Returns how many were restored."""
        drops: Counter[str] = Counter()
        restored = 0
        for group in batch.metrics:
            view = self._view(group, drops)
            if view is None:
                continue
            for series, value, timestamp, _ in snapshot_points(group):
                entry = self._series.get(series) or self._add(series, view, now, drops)
                if entry is not None:
                    entry.value = value
                    entry.timestamp = timestamp
                    restored += 1
        return restored

    # -- expiry ------------------------------------------------------------------------------

    def expire(self, cutoff: float, families: list[Family] | None = None) -> int:
        """Remove series of `families` (default: all) not updated since `cutoff`; returns how many.

        Dropped-series verdicts are forgotten too, so a series dropped for a duplicate label
        set gets its chance again once the series it clashed with is gone.
        """
        self._rejected.clear()
        removed = 0
        for family in list(self.families.values()) if families is None else families:
            stale = [entry for entry in family.entries.values() if entry.updated < cutoff]
            for entry in stale:
                self._remove(entry)
            removed += len(stale)
        return removed

    def _log_once(self, key: str, message: str, **fields: str) -> None:
        now = time.monotonic()
        last = self._logged.get(key)
        if last is None or now - last >= _LOG_EVERY_S:
            if len(self._logged) > 10_000:
                self._logged.clear()
            self._logged[key] = now
            log.warning(message, extra=fields)


_EXEMPLAR_TYPES = frozenset((FamilyType.COUNTER, FamilyType.HISTOGRAM))


def _claims(name: str, family_type: FamilyType) -> tuple[str, ...]:
    """Every name a family uses in either format: its family names and its sample names.

    Two families may not share one: `foo` (gauge) and `foo_total` (counter, OpenMetrics family
    `foo`) clash, as do a histogram `foo` and a gauge `foo_count`.
    """
    if family_type is FamilyType.COUNTER:
        base = name.removesuffix("_total")
        return (name, base, f"{base}_created") if base != name else (name,)
    if family_type is FamilyType.HISTOGRAM:
        return (name, f"{name}_bucket", f"{name}_sum", f"{name}_count", f"{name}_created")
    if family_type is FamilyType.SUMMARY:
        return (name, f"{name}_sum", f"{name}_count", f"{name}_created")
    return (name,)


def _prefix(view: SeriesView) -> str:
    text = view.label_text()
    if view.family.type in (FamilyType.HISTOGRAM, FamilyType.SUMMARY):
        return text
    return f"{view.family.name}{{{text}}} " if text else f"{view.family.name} "
