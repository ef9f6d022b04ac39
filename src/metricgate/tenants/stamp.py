"""Stamping the tenant on data: the gateway says whose data it is, never the client.

Every metric's resource gets attribute `tenant.id` (configurable) and, when `label` is set
(default `tenant`), every point gets that attribute too, so Prometheus outputs show it as a label
and remote-write backends can route on it. A value the client sent under either name is replaced,
and the series that carried a different value are counted as forged, once, when the stamp first
sees them (counting per point would cost a check per point on the hot path).

`apply(batch)` stamps a decoded batch. Decoders that keep their own series caches stamp while
decoding instead (`resource_attributes`, `point_attributes`), so a known series costs nothing
more than it does unstamped (the otlp receiver's protobuf decoder does).

Invariant: stamping never changes anything but those two attributes, and it builds new batch
objects (the receiver's batch is shared with nothing yet, but interned series are shared with
everyone). Per metric and per series, the stamped object is computed once and remembered in a
bounded table, so a steady stream costs one dict lookup per point.
"""

from __future__ import annotations

from metricgate.model import Batch, MetricPoints
from metricgate.model.series import INTERNER, Attributes, AttributeValue, Interner, Metric, Series


def _replaced(
    attributes: tuple[tuple[str, AttributeValue], ...], key: str, value: str
) -> tuple[tuple[tuple[str, AttributeValue], ...], bool]:
    """Attributes with `key` set to `value` (taken out when `value` is empty), and whether a
    different value was there."""
    if not value:
        if all(pair[0] != key for pair in attributes):
            return attributes, False
        return tuple(pair for pair in attributes if pair[0] != key), True
    forged = False
    kept: list[tuple[str, AttributeValue]] = []
    for pair in attributes:
        if pair[0] == key:
            forged = pair[1] != value
        else:
            kept.append(pair)
    kept.append((key, value))
    kept.sort(key=lambda pair: pair[0])
    return tuple(kept), forged


class TenantStamp:
    """Stamps one tenant's id on batches (see module docstring).

    The anonymous stamp (`TenantStamp.anonymous()`, tenant `""`) is for data that entered
    without a tenant on a gateway that has tenants: it takes a client-sent `tenant.id` off the
    resources (counted as forged) so that such data is nobody's, and leaves points as they are.
    """

    __slots__ = ("_forged", "_interner", "_metrics", "_series", "label", "max_entries",
                 "resource_attribute", "tenant")  # fmt: skip

    def __init__(
        self,
        tenant: str,
        resource_attribute: str = "tenant.id",
        label: str = "tenant",
        interner: Interner = INTERNER,
        max_entries: int = 1_000_000,
    ) -> None:
        self.tenant = tenant
        self.resource_attribute = resource_attribute
        self.label = label
        self._interner = interner
        self.max_entries = max_entries
        self._metrics: dict[Metric, tuple[Metric, bool]] = {}
        self._series: dict[Series, Series] = {}
        self._forged = 0

    @classmethod
    def anonymous(cls, resource_attribute: str = "tenant.id") -> TenantStamp:
        """The stamp of data without a tenant (see class docstring)."""
        return cls("", resource_attribute, label="")

    def resource_attributes(self, attributes: Attributes) -> tuple[Attributes, bool]:
        """Resource attributes with the tenant set, and whether another tenant was there."""
        return _replaced(attributes, self.resource_attribute, self.tenant)

    def point_attributes(self, attributes: Attributes) -> tuple[Attributes, bool]:
        """Point attributes with the tenant label set (when there is a label), and whether
        another tenant was there."""
        if not self.label:
            return attributes, False
        return _replaced(attributes, self.label, self.tenant)

    def apply(self, batch: Batch) -> tuple[Batch, int]:
        """The stamped batch, and how many of its series, not seen before, carried another
        (forged) tenant."""
        self._forged = 0
        metrics: list[MetricPoints] = []
        series_cache = self._series
        if len(series_cache) >= self.max_entries or len(self._metrics) >= self.max_entries:
            series_cache.clear()
            self._metrics.clear()
        for points in batch.metrics:
            metric, metric_forged = self._metric(points.metric)
            if metric is points.metric and not self.label:
                metrics.append(points)  # nothing to stamp on this metric or its points
                continue
            get = series_cache.get
            miss = self._miss
            stamped = [
                get(series) or miss(series, metric, metric_forged) for series in points.series
            ]
            metrics.append(
                MetricPoints(
                    metric,
                    stamped,
                    points.values,
                    points.timestamps,
                    points.start_timestamps,
                    points.flags,
                    points.exemplars,
                )
            )
        return Batch(metrics), self._forged

    def _metric(self, metric: Metric) -> tuple[Metric, bool]:
        entry = self._metrics.get(metric)
        if entry is None:
            attributes, forged = _replaced(
                metric.resource.attributes, self.resource_attribute, self.tenant
            )
            if attributes is metric.resource.attributes:
                entry = (metric, False)
            else:
                resource = self._interner.intern_resource(attributes, metric.resource.schema_url)
                entry = (self._interner.intern_metric_like(metric, resource=resource), forged)
            self._metrics[metric] = entry
        return entry

    def _miss(self, series: Series, metric: Metric, metric_forged: bool) -> Series:
        attributes, forged = self.point_attributes(series.attributes)
        if forged or metric_forged:
            self._forged += 1
        stamped = self._series[series] = self._interner.intern_series(metric, attributes)
        return stamped
