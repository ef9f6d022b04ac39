"""Protobuf OTLP metrics requests -> `Batch`, at millions of points per second.

The request is parsed with the private schema (`schema.py`), which leaves every gauge and sum
point as its own encoded bytes. `layout.py` reads the time and value fields of such a point at
fixed offsets; the rest of the point, its *tail* (the attributes), is the key of a per-metric
cache of series, so a known series costs one slice and one dictionary lookup and its attributes
are never decoded. Everything else (another field order, flags, a new series) takes the slow
path: a full parse of that point, attributes decoded only for a series not seen before.
Exemplars of a known series are skipped by `layout.py` and parsed alone. Histograms, exponential
histograms and summaries always take the full parse; they are rarer and their values cost more
than their keys.

`decode(body, stamp)` stamps a tenant while decoding (a `Stamp`, in the gateway a
`metricgate.tenants.TenantStamp`: `tenant.id` on resources, the tenant label on points):
resources, metric states and so series are cached per tenant, so a known series of a tenant costs
exactly what an unstamped one does, and a forged tenant is replaced (and counted) once, when its
series is first seen.

Caches, all counted together and bounded by `max_series` entries (past it they are all cleared at
once and refill from the traffic; objects handed out earlier stay valid, the model compares by
value): resource bytes -> `Resource`; scope bytes -> `Scope`; metric descriptor -> per-metric
state; per metric, point tail bytes -> `Series` and attribute bytes -> `Series`. Every series seen
gets an entry, admitted downstream or not (about 0.3 KiB with its key, plus its attributes); the
memory limiter empties them all (`release`, see `metricgate.model.caches`) before it refuses data.
Apart from those, one table for the process: encoded attribute -> attribute (`encoded_attributes`),
so a new series parses only the attributes no series had before.

The module runs past 400 lines: the hot loop, its slow path and the caches they share stay
together, the stamping included, so a reader sees every way a series enters the caches at once.

Invariant: a cache hit gives exactly what a full decode would give (stamped the same). A tail
enters the cache only after a full decode of its point showed it holds nothing but attributes
(`layout.only_attributes`), so the tail is the series identity and nothing else.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable
from typing import Any, Final, Protocol

from google.protobuf.message import DecodeError as ProtobufDecodeError

from metricgate.model import (
    INTERNER,
    Attributes,
    AttributeValue,
    Exemplar,
    Metric,
    MetricPoints,
    PointValue,
    Resource,
    Scope,
    Series,
)
from metricgate.model.caches import BoundedTable, register
from metricgate.wire.otlp import points as p
from metricgate.wire.otlp.layout import (
    START_TIME_DOUBLE,
    START_TIME_INT,
    TIME_DOUBLE,
    TIME_INT,
    layout,
    only_attributes,
)
from metricgate.wire.otlp.schema import (
    NATIVE_MARK,
    ExportMetricsServiceRequest,
    InstrumentationScope,
    KeyValue,
    NumberDataPoint,
)
from metricgate.wire.otlp.schema import Exemplar as ExemplarMessage
from metricgate.wire.otlp.schema import Resource as ResourceMessage

DEFAULT_MAX_SERIES: Final = 1_000_000
"""Entries one decoder caches (resources, scopes, metrics and series together)."""


class Stamp(Protocol):
    """Sets the tenant on what the decoder reads (`metricgate.tenants.TenantStamp`)."""

    @property
    def tenant(self) -> str: ...

    def resource_attributes(self, attributes: Attributes) -> tuple[Attributes, bool]:
        """Resource attributes with the tenant set, and whether another tenant was there."""
        ...

    def point_attributes(self, attributes: Attributes) -> tuple[Attributes, bool]:
        """Point attributes with the tenant set, and whether another tenant was there."""
        ...


class _MetricState:
    """What the decoder remembers about one metric descriptor (of one tenant, when stamping)."""

    __slots__ = ("bounds", "fast", "forged", "forgeries", "metric", "series", "stamp")

    def __init__(self, metric: Metric, stamp: Stamp | None, forged: bool) -> None:
        self.metric = metric
        self.stamp = stamp
        self.forged = forged
        """The resource as sent named another tenant."""
        self.forgeries: set[Attributes] = set()
        """Attributes (as sent) of forged series counted already: a series can enter both
        caches below."""
        self.fast: dict[bytes, Series] = {}
        """Number point tail -> series (see module docstring)."""
        self.series: dict[tuple[bytes, ...], Series] = {}
        """Encoded attributes, as sent -> series."""
        self.bounds = p.BoundsTable()

    def new_series(self, attributes: Attributes, rejections: p.Rejections) -> Series:
        """The series of `attributes` (stamped), seen for the first time. The decoder's caches
        hold it, so it is not interned too (equal series compare equal, whatever the object)."""
        stamp = self.stamp
        if stamp is None:
            return Series(self.metric, attributes)
        stamped, forged = stamp.point_attributes(attributes)
        if (forged or self.forged) and attributes not in self.forgeries:
            self.forgeries.add(attributes)
            rejections.forged += 1
        return Series(self.metric, stamped)


def any_value(value: Any) -> AttributeValue:
    """An `AnyValue` message as a model attribute value (see `points` for the mapping)."""
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return tuple(any_value(v) for v in value.array_value.values)
    if which == "kvlist_value":
        return p.canonical_attributes(
            (kv.key, any_value(kv.value)) for kv in value.kvlist_value.values
        )
    if which == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    result: AttributeValue = getattr(value, which)
    return result


def key_values(pairs: Iterable[Any]) -> Attributes:
    """`KeyValue` messages -> canonical attributes."""
    return p.canonical_attributes((kv.key, any_value(kv.value)) for kv in pairs)


MAX_DECODED_PAIRS: Final = 32_768
"""Encoded attributes whose decoding the process keeps (see `encoded_attributes`)."""
MAX_DECODED_PAIR_BYTES: Final = 128
"""Longer encoded attributes are decoded every time: such values are mostly unique (ids, URLs,
messages), and keeping their bytes would double what they cost."""
_DECODED_PAIRS: Final[BoundedTable[bytes, tuple[str, AttributeValue]]] = BoundedTable(
    MAX_DECODED_PAIRS
)


def encoded_attributes(raws: Iterable[bytes]) -> Attributes:
    """Encoded `KeyValue`s -> canonical attributes. Most attributes of a new series are ones
    other series have (`method=GET`), so a short one seen before is a lookup, not a parse; the
    table forgets everything when full or released (a few MiB at most)."""
    decoded = _DECODED_PAIRS.entries
    pairs = []
    for raw in raws:
        pair = decoded.get(raw)
        if pair is None:
            kv = KeyValue.FromString(raw)
            pair = p.shared_pair(kv.key, any_value(kv.value))
            if len(raw) <= MAX_DECODED_PAIR_BYTES:
                _DECODED_PAIRS.put(raw, pair)
        pairs.append(pair)
    return p.ordered_attributes(pairs)


def _exemplars(found: Iterable[Any]) -> tuple[Exemplar, ...]:
    out = []
    for e in found:
        attributes = e.filtered_attributes
        out.append(
            Exemplar(
                float(e.as_int) if e.as_int else e.as_double,
                e.time_unix_nano,
                e.trace_id.hex(),
                e.span_id.hex(),
                key_values(attributes) if attributes else (),
            )
        )
    return tuple(out)


class ProtobufDecoder:
    """Decodes `ExportMetricsServiceRequest` bodies; keeps the caches described above.

    Not thread-safe: one decoder per receiver, used from its event loop.
    """

    def __init__(self, max_series: int = DEFAULT_MAX_SERIES, *, native_mark: bool = False) -> None:
        self.max_series = max_series
        self.native_mark = native_mark
        """Read a scope's `NATIVE_MARK` as `Metric.native_prometheus` (and drop it); only for
        bodies metricgate wrote itself (`OtlpEncoder(mark_native=True)`)."""
        self._resources: dict[tuple[bytes, str, str], tuple[Resource, bool]] = {}
        self._scopes: dict[tuple[bytes, str], tuple[Scope, bool]] = {}
        self._metrics: dict[tuple[object, ...], _MetricState] = {}
        self._entries = 0
        register(self)

    @property
    def cached_entries(self) -> int:
        return self._entries

    def clear(self) -> None:
        self._resources = {}
        self._scopes = {}
        self._metrics = {}
        self._entries = 0

    def release(self) -> int:
        """Forget every cached entry (the memory limiter's call); the number forgotten."""
        count = self._entries
        self.clear()
        return count

    def __len__(self) -> int:
        return self._entries

    def _grew(self) -> None:
        self._entries += 1
        if self._entries > self.max_series:
            self.clear()

    def decode(self, body: bytes, stamp: Stamp | None = None) -> p.DecodeResult:
        """The batch in `body` (stamped with `stamp`'s tenant), or `DecodeError` when it is not
        an OTLP metrics request."""
        try:
            request = ExportMetricsServiceRequest.FromString(body)
            return self._request(request, stamp)
        except ProtobufDecodeError as exc:
            raise p.DecodeError(f"invalid protobuf ExportMetricsServiceRequest: {exc}") from None

    def _request(self, request: Any, stamp: Stamp | None) -> p.DecodeResult:
        groups = p.Groups()
        rejections = p.Rejections()
        for resource_metrics in request.resource_metrics:
            resource, forged = self._resource(
                resource_metrics.resource, resource_metrics.schema_url, stamp
            )
            for scope_metrics in resource_metrics.scope_metrics:
                scope, native = self._scope(scope_metrics.scope, scope_metrics.schema_url)
                for metric in scope_metrics.metrics:
                    data = metric.WhichOneof("data")
                    if data is not None:
                        self._metric(
                            resource, scope, native, metric, data, groups, rejections, stamp, forged
                        )
        return groups.result(rejections, stamp is not None)

    def _resource(self, raw: bytes, schema_url: str, stamp: Stamp | None) -> tuple[Resource, bool]:
        """The resource (stamped), and whether the resource as sent named another tenant."""
        key = (raw, schema_url, stamp.tenant if stamp is not None else "")
        found = self._resources.get(key)
        if found is None:
            attributes = key_values(ResourceMessage.FromString(raw).attributes)
            forged = False
            if stamp is not None:
                attributes, forged = stamp.resource_attributes(attributes)
            resource = INTERNER.intern_resource(attributes, schema_url)
            found = self._resources[key] = (resource, forged)
            self._grew()
        return found

    def _scope(self, raw: bytes, schema_url: str) -> tuple[Scope, bool]:
        """The scope, and whether its metrics are native Prometheus ones (`native_mark`)."""
        key = (raw, schema_url)
        found = self._scopes.get(key)
        if found is None:
            scope = InstrumentationScope.FromString(raw)
            attributes = key_values(scope.attributes)
            native = False
            if self.native_mark and any(k == NATIVE_MARK for k, _ in attributes):
                attributes = tuple(pair for pair in attributes if pair[0] != NATIVE_MARK)
                native = True
            found = self._scopes[key] = (
                INTERNER.intern_scope(scope.name, scope.version, attributes, schema_url),
                native,
            )
            self._grew()
        return found

    def _metric(
        self,
        resource: Resource,
        scope: Scope,
        native: bool,
        message: Any,
        data: str,
        groups: p.Groups,
        rejections: p.Rejections,
        stamp: Stamp | None,
        forged: bool,
    ) -> None:
        body = getattr(message, data)
        data_points = body.data_points
        if not data_points:
            return
        name: str = message.name
        if not name:
            rejections.add(p.NO_NAME, "", len(data_points))
            return
        temporality = 0 if data in ("gauge", "summary") else body.aggregation_temporality
        monotonic = data == "sum" and body.is_monotonic
        unit: str = message.unit
        description: str = message.description
        # The tenant is in the key even when the resource is the same object: a client of an
        # open listener may send the very resource a stamped one gets; its series are unstamped.
        tenant = stamp.tenant if stamp is not None else None
        key = (
            resource,
            scope,
            native,
            name,
            unit,
            description,
            data,
            temporality,
            monotonic,
            tenant,
        )
        state = self._metrics.get(key)
        if state is None:
            described = p.descriptor(data, temporality, monotonic)
            if described is None:
                rejections.add(p.BAD_TEMPORALITY, name, len(data_points))
                return
            kind, known_temporality, is_monotonic = described
            metric = INTERNER.intern_metric(
                resource,
                scope,
                name,
                unit,
                kind,
                known_temporality,
                is_monotonic,
                description,
                native,
            )
            state = self._metrics[key] = _MetricState(metric, stamp, forged)
            self._grew()
        group = groups.get(state.metric)
        if data == "gauge" or data == "sum":
            self._numbers(data_points, state, group, rejections)
        else:
            self._structured(data, data_points, state, group, rejections)

    def _numbers(
        self,
        raws: Iterable[bytes],
        state: _MetricState,
        group: MetricPoints,
        rejections: p.Rejections,
    ) -> None:
        """The hot loop: known series in the common layouts (see `layout.py`)."""
        get = state.fast.get
        add_series = group.series.append
        add_value = group.values.append
        add_time = group.timestamps.append
        add_start = group.start_timestamps.append
        add_flags = group.flags.append
        value: float
        for raw in raws:
            size = len(raw)
            if size > 26 and raw[0] == 0x11 and raw[9] == 0x19:
                tag = raw[18]
                if tag == 0x21:
                    start, time, value = START_TIME_DOUBLE(raw)
                elif tag == 0x31:
                    start, time, as_int = START_TIME_INT(raw)
                    value = float(as_int)
                else:
                    self._number(raw, state, group, rejections)
                    continue
                series = get(raw[27:])
            elif size > 17 and raw[0] == 0x19:
                tag = raw[9]
                if tag == 0x21:
                    time, value = TIME_DOUBLE(raw)
                elif tag == 0x31:
                    time, as_int = TIME_INT(raw)
                    value = float(as_int)
                else:
                    self._number(raw, state, group, rejections)
                    continue
                start = 0
                series = get(raw[18:])
            else:
                series = None
            if series is None or not time:
                self._number(raw, state, group, rejections)
                continue
            add_series(series)
            add_value(value)
            add_time(time)
            add_start(start)
            add_flags(0)

    def _number(
        self, raw: bytes, state: _MetricState, group: MetricPoints, rejections: p.Rejections
    ) -> None:
        """The slow path for one number point; teaches the fast path its tail when it can."""
        found = layout(raw)
        if found is not None:
            start, time, value, exemplars, tail = found
            series = state.fast.get(tail)
            if series is not None and time:  # a known series, with exemplars in the way
                index = len(group.series)
                group.append(series, value, time, start, 0)
                if exemplars:
                    group.add_exemplars(
                        index, _exemplars(map(ExemplarMessage.FromString, exemplars))
                    )
                return
        point = NumberDataPoint.FromString(raw)
        time = point.time_unix_nano
        if not time:
            rejections.add(p.NO_TIME, state.metric.name)
            return
        fast_key = found[4] if found is not None and not point.flags else None
        if fast_key is not None and fast_key not in state.fast and only_attributes(fast_key):
            # the fast path will find this series by its tail: no second cache entry for it
            attributes = encoded_attributes(point.attributes)
            series = state.new_series(attributes, rejections)
            state.fast[fast_key] = series
            self._grew()
        else:
            series = self._series(state, tuple(point.attributes), rejections)
        flags = point.flags
        index = len(group.series)
        as_int = point.as_int
        value = p.number_value(float(as_int) if as_int else point.as_double, flags)
        group.append(series, value, time, point.start_time_unix_nano, flags)
        if point.exemplars:
            group.add_exemplars(index, _exemplars(point.exemplars))

    def _series(
        self, state: _MetricState, key: tuple[bytes, ...], rejections: p.Rejections
    ) -> Series:
        found = state.series.get(key)
        if found is None:
            attributes = encoded_attributes(key)
            found = state.series[key] = state.new_series(attributes, rejections)
            self._grew()
        return found

    def _structured(
        self,
        data: str,
        data_points: Iterable[Any],
        state: _MetricState,
        group: MetricPoints,
        rejections: p.Rejections,
    ) -> None:
        """Histogram, exponential histogram and summary points: always a full parse."""
        name = state.metric.name
        read = _READERS[data]
        for point in data_points:
            time = point.time_unix_nano
            if not time:
                rejections.add(p.NO_TIME, name)
                continue
            flags = point.flags
            value = read(point, state.bounds, flags)
            if isinstance(value, str):
                rejections.add(value, name)
                continue
            index = len(group.series)
            series = self._series(state, tuple(point.attributes), rejections)
            group.append(series, value, time, point.start_time_unix_nano, flags)
            if data != "summary" and point.exemplars:
                group.add_exemplars(index, _exemplars(point.exemplars))


def _optional(point: Any, field: str) -> float | None:
    found: float | None = getattr(point, field) if point.HasField(field) else None
    return found


def _histogram(point: Any, bounds: p.BoundsTable, flags: int) -> PointValue | str:
    return p.histogram_point(
        point.count,
        _optional(point, "sum"),
        bounds.intern(tuple(point.explicit_bounds)),
        tuple(point.bucket_counts),
        _optional(point, "min"),
        _optional(point, "max"),
        flags,
    )


def _exponential(point: Any, bounds: p.BoundsTable, flags: int) -> PointValue | str:
    positive, negative = point.positive, point.negative
    return p.exponential_point(
        point.count,
        _optional(point, "sum"),
        point.scale,
        point.zero_count,
        p.bucket_range(positive.offset, tuple(positive.bucket_counts)),
        p.bucket_range(negative.offset, tuple(negative.bucket_counts)),
        point.zero_threshold,
        _optional(point, "min"),
        _optional(point, "max"),
        flags,
    )


def _summary(point: Any, bounds: p.BoundsTable, flags: int) -> PointValue | str:
    quantiles = [(q.quantile, q.value) for q in point.quantile_values]
    return p.summary_point(point.count, point.sum, quantiles, flags)


_READERS: Final[dict[str, Callable[[Any, p.BoundsTable, int], PointValue | str]]] = {
    "histogram": _histogram,
    "exponential_histogram": _exponential,
    "summary": _summary,
}
