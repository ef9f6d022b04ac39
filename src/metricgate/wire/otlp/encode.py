"""`Batch` -> serialized `ExportMetricsServiceRequest`, written straight to protobuf wire format.

Resources, scopes and each series' attributes are encoded once and cached as bytes (the model
interns them, so the caches are keyed by the same objects every batch); a gauge or sum point
without exemplars is then one `struct.pack` plus its cached attribute bytes, and an explicit
histogram point a few packs plus its bounds, cached per shared bounds tuple. Exponential
histograms and summaries are built with opentelemetry-proto's messages, serialized without
attributes, and the cached attribute fields appended (protobuf concatenation merges repeated
fields). String attribute pairs are written by hand and cached per pair. Groups are nested
resource -> scope -> metric in first-seen order; each `MetricPoints` becomes one `Metric`.

Mapping notes: values go out as `as_double` (the model holds floats); bytes attributes, which
the model keeps as base64 text, go out as that text; a tuple of `(str, value)` pairs goes out
as a kvlist, any other tuple as an array. `native_prometheus` metrics go out as plain OTLP under
their Prometheus names (histogram and summary base names, labels as string attributes); the
receiving end cannot tell them from native OTLP, unless the encoder is made with `mark_native`:
then their scope carries the attribute `NATIVE_MARK` too, which a `ProtobufDecoder` made with
`native_mark` reads back as the flag (metricgate's own round trips: queues, snapshots, workers).

Invariant: the bytes produced parse with opentelemetry-proto into exactly the batch's points;
caches only ever hold the encoding of immutable, interned model objects.
"""

from __future__ import annotations

import struct
from typing import Any, Final, cast

from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    InstrumentationScope,
    KeyValue,
    KeyValueList,
)
from opentelemetry.proto.metrics.v1 import metrics_pb2 as pb
from opentelemetry.proto.resource.v1.resource_pb2 import Resource as ResourceMessage

from metricgate.model import (
    AttributeValue,
    Batch,
    Exemplar,
    ExponentialHistogramPoint,
    HistogramPoint,
    MetricKind,
    MetricPoints,
    Resource,
    Scope,
    Series,
    SummaryPoint,
    Temporality,
)
from metricgate.wire.otlp.schema import NATIVE_MARK
from metricgate.wire.protowire import field, varint

_START_TIME_VALUE: Final = struct.Struct("<BQBQBd").pack
_TIME_VALUE: Final = struct.Struct("<BQBd").pack
_FIXED64_FIELD: Final = struct.Struct("<BQBQBQ").pack
_DOUBLE_FIELD: Final = struct.Struct("<Bd").pack
_ATTRIBUTE_FIELD: Final = {
    MetricKind.GAUGE: 7,
    MetricKind.SUM: 7,
    MetricKind.HISTOGRAM: 9,
    MetricKind.EXPONENTIAL_HISTOGRAM: 1,
    MetricKind.SUMMARY: 7,
}
"""Field number of `attributes` in each kind's data point message."""
_MAX_CACHED: Final = 1_000_000


def any_value(value: AttributeValue) -> AnyValue:
    """A model attribute value as `AnyValue` (see module docstring for tuples)."""
    if value is None:
        return AnyValue()
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, str):
        return AnyValue(string_value=value)
    if value and all(
        isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str) for item in value
    ):
        pairs = cast(tuple[tuple[str, AttributeValue], ...], value)
        return AnyValue(kvlist_value=KeyValueList(values=key_values(pairs)))
    return AnyValue(array_value=ArrayValue(values=[any_value(v) for v in value]))


def key_values(attributes: tuple[tuple[str, AttributeValue], ...]) -> list[KeyValue]:
    return [KeyValue(key=k, value=any_value(v)) for k, v in attributes]


def key_value(key: str, value: AttributeValue) -> bytes:
    """A length-prefixed `KeyValue`; strings, the common case, are written by hand."""
    if isinstance(value, str):
        raw_key = key.encode()
        any_bytes = field(1, value.encode())
        body = (field(1, raw_key) if raw_key else b"") + field(2, any_bytes)
    else:
        body = KeyValue(key=key, value=any_value(value)).SerializeToString()
    return varint(len(body)) + body


def _exemplar(e: Exemplar) -> pb.Exemplar:
    return pb.Exemplar(
        filtered_attributes=key_values(e.filtered_attributes),
        time_unix_nano=e.time_unix_nano,
        as_double=e.value,
        span_id=bytes.fromhex(e.span_id),
        trace_id=bytes.fromhex(e.trace_id),
    )


class OtlpEncoder:
    """Encodes batches; keeps the byte caches described above. One per exporter."""

    def __init__(self, max_cached: int = _MAX_CACHED, *, mark_native: bool = False) -> None:
        self.max_cached = max_cached
        self.mark_native = mark_native
        self._attributes: dict[Series, bytes] = {}
        self._pairs: dict[tuple[str, AttributeValue], bytes] = {}
        self._bounds: dict[tuple[float, ...], bytes] = {}
        """Attribute pair -> its `KeyValue` length-prefixed (pairs are shared across series)."""
        self._resources: dict[Resource, bytes] = {}
        self._scopes: dict[tuple[Scope, bool], bytes] = {}

    def encode(self, batch: Batch) -> bytes:
        """The serialized `ExportMetricsServiceRequest` holding every point of `batch`."""
        if len(self._attributes) > self.max_cached:
            self._attributes.clear()
        tree: dict[Resource, dict[tuple[Scope, bool], list[bytes]]] = {}
        mark = self.mark_native
        for group in batch.metrics:
            if not group.series:
                continue
            metric = group.metric
            scope_key = (metric.scope, mark and metric.native_prometheus)
            tree.setdefault(metric.resource, {}).setdefault(scope_key, []).append(
                self._metric(group)
            )
        out = []
        for resource, scopes in tree.items():
            parts = [self._resource(resource)]
            for (scope, native), metrics in scopes.items():
                body = [self._scope(scope, native), *(field(2, m) for m in metrics)]
                if scope.schema_url:
                    body.append(field(3, scope.schema_url.encode()))
                parts.append(field(2, b"".join(body)))
            if resource.schema_url:
                parts.append(field(3, resource.schema_url.encode()))
            out.append(field(1, b"".join(parts)))
        return b"".join(out)

    def _resource(self, resource: Resource) -> bytes:
        found = self._resources.get(resource)
        if found is None:
            message = ResourceMessage(attributes=key_values(resource.attributes))
            found = field(1, message.SerializeToString())
            if len(self._resources) > 10_000:
                self._resources.clear()
            self._resources[resource] = found
        return found

    def _scope(self, scope: Scope, native: bool) -> bytes:
        found = self._scopes.get((scope, native))
        if found is None:
            attributes = scope.attributes
            if native:
                attributes = tuple(sorted((*attributes, (NATIVE_MARK, True))))
            message = InstrumentationScope(
                name=scope.name, version=scope.version, attributes=key_values(attributes)
            )
            found = field(1, message.SerializeToString())
            if len(self._scopes) > 10_000:
                self._scopes.clear()
            self._scopes[(scope, native)] = found
        return found

    def _series(self, series: Series) -> bytes:
        found = self._attributes.get(series)
        if found is None:
            tag = varint(_ATTRIBUTE_FIELD[series.metric.kind] << 3 | 2)
            pairs = self._pairs
            parts = []
            for pair in series.attributes:
                encoded = pairs.get(pair)
                if encoded is None:
                    encoded = key_value(*pair)
                    if len(pairs) > self.max_cached:
                        pairs.clear()
                    pairs[pair] = encoded
                parts.append(tag + encoded)
            found = self._attributes[series] = b"".join(parts)
        return found

    def _metric(self, group: MetricPoints) -> bytes:
        metric = group.metric
        kind = metric.kind
        if kind is MetricKind.GAUGE or kind is MetricKind.SUM:
            points = self._numbers(group)
        else:
            points = self._structured(group)
        data = [b"\x0a" + varint(len(point)) + point for point in points]
        if kind is not MetricKind.GAUGE and kind is not MetricKind.SUMMARY:
            if metric.temporality is not Temporality.UNSPECIFIED:
                data.append(varint(2 << 3) + varint(int(metric.temporality)))
            if kind is MetricKind.SUM and metric.monotonic:
                data.append(b"\x18\x01")
        parts = [field(1, metric.name.encode())]
        if metric.description:
            parts.append(field(2, metric.description.encode()))
        if metric.unit:
            parts.append(field(3, metric.unit.encode()))
        parts.append(field(int(kind), b"".join(data)))
        return b"".join(parts)

    def _numbers(self, group: MetricPoints) -> list[bytes]:
        out = []
        attributes = self._attributes
        exemplars = group.exemplars or {}
        for index, (series, value, time, start, flags) in enumerate(group.rows()):
            tail = attributes.get(series)
            if tail is None:
                tail = self._series(series)
            if start:
                head = _START_TIME_VALUE(0x11, start, 0x19, time, 0x21, value)
            else:
                head = _TIME_VALUE(0x19, time, 0x21, value)
            found = exemplars.get(index)
            if found:
                head += b"".join(field(5, _exemplar(e).SerializeToString()) for e in found)
            if flags:
                tail += b"\x40" + varint(flags)
            out.append(head + tail)
        return out

    def _histogram(
        self,
        value: HistogramPoint,
        time: int,
        start: int,
        flags: int,
        exemplars: tuple[Exemplar, ...] | None,
    ) -> bytes:
        """A `HistogramDataPoint` without attributes, written by hand (bounds cached)."""
        parts = [_FIXED64_FIELD(0x11, start, 0x19, time, 0x21, value.count)]
        if value.sum is not None:
            parts.append(_DOUBLE_FIELD(0x29, value.sum))
        counts = value.bucket_counts
        if counts:
            parts.append(field(6, struct.pack(f"<{len(counts)}Q", *counts)))
        bounds = self._bounds.get(value.bounds)
        if bounds is None:
            raw = value.bounds
            bounds = field(7, struct.pack(f"<{len(raw)}d", *raw)) if raw else b""
            if len(self._bounds) > 1024:
                self._bounds.clear()
            self._bounds[raw] = bounds
        parts.append(bounds)
        if exemplars:
            parts.extend(field(8, _exemplar(e).SerializeToString()) for e in exemplars)
        if flags:
            parts.append(b"\x50" + varint(flags))
        if value.min is not None:
            parts.append(_DOUBLE_FIELD(0x59, value.min))
        if value.max is not None:
            parts.append(_DOUBLE_FIELD(0x61, value.max))
        return b"".join(parts)

    def _structured(self, group: MetricPoints) -> list[bytes]:
        out = []
        exemplars = group.exemplars or {}
        for index, (series, value, time, start, flags) in enumerate(group.rows()):
            found = exemplars.get(index)
            if isinstance(value, HistogramPoint):
                head = self._histogram(value, time, start, flags, found)
                out.append(head + self._series(series))
                continue
            common: dict[str, Any] = {
                "time_unix_nano": time,
                "start_time_unix_nano": start,
                "flags": flags,
            }
            if found:
                common["exemplars"] = [_exemplar(e) for e in found]
            message: Any
            if isinstance(value, ExponentialHistogramPoint):
                message = pb.ExponentialHistogramDataPoint(
                    count=value.count,
                    scale=value.scale,
                    zero_count=value.zero_count,
                    zero_threshold=value.zero_threshold,
                    **common,
                )
                for side, buckets in (
                    (message.positive, value.positive),
                    (message.negative, value.negative),
                ):
                    if buckets.counts:
                        side.offset = buckets.offset
                        side.bucket_counts.extend(buckets.counts)
                _optionals(message, value.sum, value.min, value.max)
            elif isinstance(value, SummaryPoint):
                common.pop("exemplars", None)
                message = pb.SummaryDataPoint(
                    count=value.count,
                    sum=value.sum,
                    quantile_values=[
                        pb.SummaryDataPoint.ValueAtQuantile(quantile=q, value=v)
                        for q, v in value.quantiles
                    ],
                    **common,
                )
            else:
                raise TypeError(f"{group.metric!r} holds a {type(value).__name__} point")
            out.append(message.SerializeToString() + self._series(series))
        return out


def _optionals(message: Any, total: float | None, low: float | None, high: float | None) -> None:
    if total is not None:
        message.sum = total
    if low is not None:
        message.min = low
    if high is not None:
        message.max = high
