"""Batches -> remote-write entries, split by shard, with the per-series state remote-write needs.

`Encoder.encode(batch, shards, now)` turns every point into one or more `timeseries` entries (a
number: one; a histogram: `_bucket{le}` per bound and `+Inf`, `_sum`, `_count`; a summary: one per
quantile, `_sum`, `_count`; an exponential histogram: converted to explicit buckets first) and
appends them to the builder of the series' shard. Delta sums and histograms are accumulated into
cumulative ones per series (remote-write has no deltas; dropping them, as the Collector does, loses
data). A no-recorded-value point, or a series not updated for `metric_expiration` (`expire`),
becomes one StaleNaN on each of its output series and forgets the series.

Each series' `SeriesState` (`outputs.py`) holds its shard key and the encoded label block of each
output series (built once, when the series or its bucket layout is new), so a steady point costs a
dict lookup, a `struct.pack` and three `bytearray` appends; a group of known gauges or counters
at one timestamp is written at once (`steady.py`), a join per fragment instead of a loop.

A series whose name and labels another series already writes (another resource with the same
job/instance, attribute keys that sanitise alike) is dropped, counted as `duplicate_series`, as on
the scrape page; so is a repeated bound or quantile within one point (the last one is written,
see `metricgate.translate.bounds`). Two writers of one series would send its samples out of
order, and the backend would refuse whole requests for it.

With a `tenant_header`, each tenant's series are encoded into builders of their own (the batch is
split per tenant once per resource, `TenantSplitter`), so every fragment holds one tenant's
entries and says whose (`Fragment.tenant`); a resource whose tenant is not a valid id has its
points dropped (`invalid_tenant`), since it could not go into the header.

Across a graceful restart (`metricgate.pipeline.snapshots`) the running totals of delta series
are kept (`snapshot`, `restore`), so the counters they become continue instead of restarting at
0; cumulative series need nothing kept, their points carry their totals.

Invariant: every entry of one model `Series` goes to shard `key % shards`, in point order; a
fragment never holds more than `max_samples` samples unless one point alone has more, nor entries
of two tenants; no two model series write the same name and labels (for the same tenant).
"""

from __future__ import annotations

import zlib
from bisect import insort
from collections import Counter

from metricgate.exporters.prometheus_remote_write.fragments import Builder, Fragment
from metricgate.exporters.prometheus_remote_write.outputs import SeriesState
from metricgate.exporters.prometheus_remote_write.runs import RunMemo
from metricgate.exporters.prometheus_remote_write.steady import write_numbers
from metricgate.model import (
    FLAG_NO_RECORDED_VALUE,
    Batch,
    MetricKind,
    MetricPoints,
    Resource,
    Series,
    Temporality,
)
from metricgate.model.arithmetic import accumulate
from metricgate.pipeline.snapshots import SnapshotPoints
from metricgate.pipeline.snapshots import points as snapshot_points
from metricgate.tenants.split import TenantSplitter
from metricgate.translate import (
    TARGET_INFO,
    Dropped,
    FamilyType,
    FamilyView,
    PrometheusTranslator,
)
from metricgate.wire.remotewrite.encode import (
    STALE_NAN,
    ZERO_DOUBLE,
    EncodedSeries,
    label_block,
    pack_double,
    timestamp_tail,
)

_MAX_REJECTED = 100_000
DUPLICATE_SERIES = "duplicate_series"
"""Drop reason: another series already has this name and label set (the first one keeps it)."""
_NS_PER_MS = 1_000_000
INVALID_TENANT = "invalid_tenant"
"""Drop reason: the resource's tenant attribute is not a tenant id a header could carry."""


class Encoder:
    """Turns batches into per-shard fragments (see module docstring)."""

    def __init__(
        self,
        translator: PrometheusTranslator,
        *,
        external_labels: dict[str, str] | None = None,
        send_staleness: bool = True,
        target_info: bool = True,
        max_samples: int = 2000,
        max_bytes: int = 0,
        tenants: TenantSplitter | None = None,
        default_tenant: str = "",
    ) -> None:
        self.translator = translator
        self.tenants = tenants
        """Splits batches per tenant (`tenant_header`); None: tenants are not kept apart."""
        self.default_tenant = default_tenant
        self.external_labels = sorted((external_labels or {}).items())
        self.send_staleness = send_staleness
        self.send_target_info = target_info
        self.max_samples = max_samples
        self.max_bytes = max_bytes
        self._states: dict[Series, SeriesState] = {}
        self._runs = RunMemo(self._states.get)
        """Runs of known series written before (`runs.py`): their next points skip lookups."""
        self._rejected: dict[Series, str] = {}
        self._owners: dict[bytes, Series] = {}
        """A series' encoded name and labels (and tenant) -> the model series holding them."""
        self._targets: dict[Resource, tuple[int, EncodedSeries] | None] = {}
        self._target_sent: dict[Resource, int] = {}
        """Last `target_info` timestamp per resource: never send one out of order."""

    def __len__(self) -> int:
        return len(self._states)

    def encode(
        self, batch: Batch, shards: int, now: float
    ) -> tuple[list[list[Fragment]], Counter[str]]:
        """Per-shard fragments for `batch` and dropped points by reason; `now` is monotonic."""
        drops: Counter[str] = Counter()
        if self.tenants is None:
            return self._encode(batch, shards, now, "", drops), drops
        per_shard: list[list[Fragment]] = [[] for _ in range(shards)]
        for tenant, part in self.tenants.split(batch):
            if tenant is None:
                drops[INVALID_TENANT] += part.point_count()
                continue
            encoded = self._encode(part, shards, now, tenant or self.default_tenant, drops)
            for fragments, more in zip(per_shard, encoded, strict=True):
                fragments += more
        return per_shard, drops

    def _encode(
        self, batch: Batch, shards: int, now: float, tenant: str, drops: Counter[str]
    ) -> list[list[Fragment]]:
        """Per-shard fragments of one tenant's `batch`."""
        builders = [Builder(self.max_samples, self.max_bytes, tenant) for _ in range(shards)]
        targets: dict[Resource, int] = {}
        for group in batch.metrics:
            if not group.series:
                continue
            metric = group.metric
            family = self.translator.family(metric)
            if isinstance(family, Dropped):
                drops[family.reason] += len(group.series)
                continue
            delta = metric.temporality is Temporality.DELTA
            if metric.kind in (MetricKind.GAUGE, MetricKind.SUM) and not delta:
                self._numbers(group, family, builders, now, drops)
            else:
                self._points(group, family, builders, now, drops, delta)
            if self.send_target_info and not metric.native_prometheus:
                latest = max(group.timestamps)
                if latest > targets.get(metric.resource, 0):
                    targets[metric.resource] = latest
        sent = self._target_sent
        if len(sent) >= _MAX_REJECTED:
            sent.clear()
        for resource, timestamp in targets.items():
            if timestamp > sent.get(resource, 0):
                sent[resource] = timestamp
                self._target_info(resource, timestamp, builders)
        return [b.finish() for b in builders]

    def snapshot(self) -> Batch:
        """The running total and last timestamp of every delta series (what `restore` needs)."""
        out = SnapshotPoints()
        for series, state in self._states.items():
            if state.value is not None:
                out.add(series, state.value, state.timestamp)
        return out.batch()

    def restore(self, batch: Batch, now: float) -> None:
        """Take back the totals of a `snapshot`; the series count as updated at `now`."""
        drops: Counter[str] = Counter()
        for group in batch.metrics:
            family = self.translator.family(group.metric)
            if isinstance(family, Dropped):
                continue
            for series, value, timestamp, _ in snapshot_points(group):
                state = self._states.get(series) or self._new(series, family, now, drops)
                if state is not None:
                    state.value = value
                    state.timestamp = timestamp

    def expire(self, cutoff: float, shards: int, now_ms: int) -> tuple[list[list[Fragment]], int]:
        """Forget series not updated since `cutoff`; their StaleNaNs (if sent) and how many."""
        per_tenant: dict[str, list[Builder]] = {}
        self._runs.fold()
        stale = [s for s, state in self._states.items() if state.updated < cutoff]
        tail = timestamp_tail(now_ms)
        for series in stale:
            state = self._states.pop(series)
            self._runs.forget(state)
            self._owners.pop(self._owner_key(series, state.encoded("").head), None)
            if self.send_staleness:
                tenant = self._tenant(series.metric.resource)
                builders = per_tenant.get(tenant)
                if builders is None:
                    builders = per_tenant[tenant] = [
                        Builder(self.max_samples, self.max_bytes, tenant) for _ in range(shards)
                    ]
                self._stale(state, builders[state.key % shards], tail, point=False)
        self._rejected.clear()
        per_shard: list[list[Fragment]] = [[] for _ in range(shards)]
        for builders in per_tenant.values():
            for fragments, builder in zip(per_shard, builders, strict=True):
                fragments += builder.finish()
        return per_shard, len(stale)

    def _owner_key(self, series: Series, head: bytes) -> bytes:
        """What two writers of one series share: its labels, and with `tenant_header` its
        tenant (the same labels under two tenants are two series, in two backends' tenants)."""
        if self.tenants is None:
            return head
        return self._tenant(series.metric.resource).encode() + b"\0" + head

    def _tenant(self, resource: Resource) -> str:
        """The header value for a series of `resource` (only valid tenants have series)."""
        if self.tenants is None:
            return ""
        return self.tenants.tenant(resource) or self.default_tenant

    # -- per kind ----------------------------------------------------------------------------

    def _numbers(
        self,
        group: MetricPoints,
        family: FamilyView,
        builders: list[Builder],
        now: float,
        drops: Counter[str],
    ) -> None:
        """Gauges and cumulative sums, kept lean: one entry per point."""
        get = self._states.get
        counter = family.type is FamilyType.COUNTER
        # A series the at-once path creates a state for is new; if one is refused there, the
        # loop below takes the group and counts the refusal (once: not into `drops` here).
        refused: Counter[str] = Counter()

        def create(series: Series) -> SeriesState | None:
            return self._new(series, family, now, refused)

        if write_numbers(group, self._runs, builders, now, counter=counter, create=create):
            return
        shards = len(builders)
        last_ts, tail, whole = -1, b"", False
        for series, value, timestamp, flags in zip(
            group.series, group.values, group.timestamps, group.flags, strict=True
        ):
            state = get(series)
            if state is None:
                state = self._new(series, family, now, drops)
                if state is None:
                    continue
            if timestamp != last_ts:
                last_ts, tail = timestamp, timestamp_tail(timestamp // _NS_PER_MS)
                whole = len(tail) == 7  # the shape the cached head is for
            builder = builders[state.key % shards]
            if builder.samples >= builder.max_samples:
                builder.room(1)
            if flags & FLAG_NO_RECORDED_VALUE:
                self._end(series, state, builder, tail)
                continue
            if counter and not value >= 0:  # type: ignore[operator]
                drops["invalid_counter_value"] += 1
                continue
            packed = pack_double(value)
            if whole and packed != ZERO_DOUBLE:
                out = builder.out
                out += state.head
                out += packed
                out += tail
            else:
                state.outputs[0].append(builder.out, packed, tail)
            builder.samples += 1
            state.updated = now

    def _points(
        self,
        group: MetricPoints,
        family: FamilyView,
        builders: list[Builder],
        now: float,
        drops: Counter[str],
        delta: bool,
    ) -> None:
        """Deltas, histograms and summaries: accumulation and several entries per point."""
        get = self._states.get
        shards = len(builders)
        counter = family.type is FamilyType.COUNTER
        for series, value, timestamp, start, flags in group.rows():
            state = get(series)
            if state is None:
                state = self._new(series, family, now, drops)
                if state is None:
                    continue
            tail = timestamp_tail(timestamp // _NS_PER_MS)
            builder = builders[state.key % shards]
            if flags & FLAG_NO_RECORDED_VALUE:
                builder.room(len(state.outputs))
                self._end(series, state, builder, tail)
                continue
            if counter and not value >= 0:  # type: ignore[operator]
                drops["invalid_counter_value"] += 1
                continue
            if delta:
                if state.value is not None:
                    if start and start < state.timestamp:
                        drops["delta_overlap"] += 1  # a retried or overlapping interval
                        continue
                    value = accumulate(state.value, value)
                state.value = value
            state.timestamp = timestamp
            state.updated = now
            before = state.outputs
            entries = state.entries(value)
            builder.room(len(entries) + len(before))
            if state.outputs is not before and before and self.send_staleness:
                # New bounds or quantiles: the series that vanished end now, not 5 minutes later.
                kept = {encoded.labels for encoded in state.outputs}
                for encoded in before:
                    if encoded.labels not in kept:
                        encoded.append(builder.out, STALE_NAN, tail)
                        builder.samples += 1
                        builder.extra += 1
            for encoded, packed in entries:
                encoded.append(builder.out, packed, tail)
            builder.samples += len(entries)
            builder.extra += len(entries) - 1

    # -- series lifecycle --------------------------------------------------------------------

    def _new(
        self, series: Series, family: FamilyView, now: float, drops: Counter[str]
    ) -> SeriesState | None:
        reason = self._rejected.get(series)
        if reason is not None:
            drops[reason] += 1
            return None
        found = self.translator.labels(series, family)
        if isinstance(found, Dropped):
            self._reject(series, found.reason, drops)
            return None
        labels = self._with_external(found[1], found[0])
        # The shard key: the CRC of the series' encoded labels, the same in every process (a
        # persistent queue's shards rely on that); for a counter or gauge that is its output.
        state = SeriesState(0, family.name, labels, now)
        encoded = state.encoded("")
        owner = self._owners.setdefault(self._owner_key(series, encoded.head), series)
        if owner is not series:
            # Another series (another resource with the same job/instance, keys that sanitise
            # alike) already writes these labels: two writers would send one series' samples
            # out of order, and the backend refuses the whole request for that.
            self._reject(series, DUPLICATE_SERIES, drops)
            return None
        state.key = zlib.crc32(encoded.head)
        kind = family.type
        if kind is not FamilyType.HISTOGRAM and kind is not FamilyType.SUMMARY:
            state.outputs = (encoded,)
            state.head = encoded.head
        self._states[series] = state
        return state

    def _reject(self, series: Series, reason: str, drops: Counter[str]) -> None:
        """Remember that `series` is dropped (until the next expiry) and count the point."""
        if len(self._rejected) >= _MAX_REJECTED:
            self._rejected.clear()
        self._rejected[series] = reason
        drops[reason] += 1

    def _with_external(
        self, labels: tuple[tuple[str, str], ...], names: tuple[str, ...]
    ) -> list[tuple[str, str]]:
        """Sorted `labels` (named `names`) plus the external labels they lack."""
        merged = list(labels)
        for name, value in self.external_labels:
            if name not in names:  # Prometheus: series labels win
                insort(merged, (name, value))
        return merged

    def _end(self, series: Series, state: SeriesState, builder: Builder, tail: bytes) -> None:
        del self._states[series]
        self._runs.forget(state)
        self._owners.pop(self._owner_key(series, state.encoded("").head), None)
        if self.send_staleness:
            self._stale(state, builder, tail, point=True)

    @staticmethod
    def _stale(state: SeriesState, builder: Builder, tail: bytes, *, point: bool) -> None:
        """StaleNaN on each output series; `point`: for a point that ended it (else expiry)."""
        for encoded in state.outputs:
            encoded.append(builder.out, STALE_NAN, tail)
        count = len(state.outputs)
        builder.samples += count
        builder.extra += count - 1 if point and count else count

    def _target_info(self, resource: Resource, timestamp: int, builders: list[Builder]) -> None:
        if resource in self._targets:
            found = self._targets[resource]
        else:
            if len(self._targets) >= _MAX_REJECTED:
                self._targets.clear()
            info = self.translator.target_info(resource)
            found = None
            if info is not None:
                labels = self._with_external(
                    tuple(zip(info.label_names, info.label_values, strict=True)), info.label_names
                )
                insort(labels, ("__name__", TARGET_INFO))
                block = label_block(labels)
                found = (zlib.crc32(block), EncodedSeries(block))
            self._targets[resource] = found
        if found is not None:
            key, encoded = found
            builder = builders[key % len(builders)]
            builder.room(1)
            encoded.append(builder.out, pack_double(1.0), timestamp_tail(timestamp // _NS_PER_MS))
            builder.samples += 1
            builder.extra += 1
