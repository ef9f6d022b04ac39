"""Test data for the otlp receiver: official OTLP messages, OTLP/JSON, a reference decoder.

The reference decoder is the obvious, slow walk over opentelemetry-proto's own classes; the
receiver's decoder must agree with it on everything it keeps.
"""

from __future__ import annotations

import base64
import json
import math
from typing import Any

from google.protobuf import json_format
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    InstrumentationScope,
    KeyValue,
    KeyValueList,
)
from opentelemetry.proto.metrics.v1 import metrics_pb2 as pb
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from metricgate.model import Batch

T0 = 1_700_000_000_000_000_000
CUMULATIVE = pb.AGGREGATION_TEMPORALITY_CUMULATIVE
DELTA = pb.AGGREGATION_TEMPORALITY_DELTA
TRACE_ID = bytes.fromhex("5b8efff798038103d269b633813fc60c")
SPAN_ID = bytes.fromhex("eee19b7ec3c1b174")


def any_value(value: object) -> AnyValue:
    """A Python value as an OTLP `AnyValue` (dict -> kvlist, list -> array)."""
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
    if isinstance(value, bytes):
        return AnyValue(bytes_value=value)
    if isinstance(value, list):
        return AnyValue(array_value=ArrayValue(values=[any_value(v) for v in value]))
    if isinstance(value, dict):
        return AnyValue(kvlist_value=KeyValueList(values=key_values(value)))
    raise TypeError(value)


def key_values(attributes: dict[str, object] | list[tuple[str, object]]) -> list[KeyValue]:
    pairs = attributes.items() if isinstance(attributes, dict) else attributes
    return [KeyValue(key=k, value=any_value(v)) for k, v in pairs]


def request(
    *metrics: pb.Metric,
    resource: dict[str, object] | None = None,
    scope: str = "test.scope",
) -> ExportMetricsServiceRequest:
    """One resource, one scope, the given metrics."""
    return ExportMetricsServiceRequest(
        resource_metrics=[
            pb.ResourceMetrics(
                resource=Resource(attributes=key_values(resource or {"service.name": "svc"})),
                scope_metrics=[
                    pb.ScopeMetrics(
                        scope=InstrumentationScope(name=scope, version="1.0"),
                        metrics=list(metrics),
                    )
                ],
            )
        ]
    )


def number(
    value: float | int,
    attributes: dict[str, object] | None = None,
    time: int = T0,
    start: int = T0 - 10**9,
    flags: int = 0,
    exemplars: list[pb.Exemplar] | None = None,
) -> pb.NumberDataPoint:
    point = pb.NumberDataPoint(
        attributes=key_values(attributes or {}),
        time_unix_nano=time,
        start_time_unix_nano=start,
        flags=flags,
        exemplars=exemplars or [],
    )
    if isinstance(value, int):
        point.as_int = value
    else:
        point.as_double = value
    return point


def gauge(name: str, *points: pb.NumberDataPoint, unit: str = "") -> pb.Metric:
    return pb.Metric(name=name, unit=unit, gauge=pb.Gauge(data_points=list(points)))


def sum_metric(
    name: str,
    *points: pb.NumberDataPoint,
    temporality: int = CUMULATIVE,
    monotonic: bool = True,
    unit: str = "",
) -> pb.Metric:
    return pb.Metric(
        name=name,
        unit=unit,
        sum=pb.Sum(
            data_points=list(points), aggregation_temporality=temporality, is_monotonic=monotonic
        ),
    )


def to_json(message: ExportMetricsServiceRequest) -> bytes:
    """OTLP/JSON: the protobuf JSON mapping, enums as integers, trace/span ids as hex."""
    document = json_format.MessageToDict(message, use_integers_for_enums=True)

    def fix(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                k: base64.b64decode(v).hex() if k in ("traceId", "spanId") else fix(v)
                for k, v in node.items()
            }
        if isinstance(node, list):
            return [fix(v) for v in node]
        return node

    return json.dumps(fix(document)).encode()


def _nan_safe(value: object) -> object:
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    return value


def snapshot(batch: Batch) -> list[tuple[object, ...]]:
    """A comparable picture of a batch (NaN made equal to NaN)."""
    out: list[tuple[object, ...]] = []
    for group in batch:
        metric = group.metric
        out.append(
            (
                metric.resource,
                metric.scope,
                metric.name,
                metric.unit,
                metric.kind,
                metric.temporality,
                metric.monotonic,
                metric.description,
                [
                    (s.attributes, _nan_safe(v), t, st, f)
                    for s, v, t, st, f in zip(
                        group.series,
                        group.values,
                        group.timestamps,
                        group.start_timestamps,
                        group.flags,
                        strict=True,
                    )
                ],
                group.exemplars,
            )
        )
    return out


def reference_value(value: AnyValue) -> object:
    """The obvious decode of an `AnyValue` into the model's attribute values."""
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return tuple(reference_value(v) for v in value.array_value.values)
    if which == "kvlist_value":
        return reference_attributes(value.kvlist_value.values)
    if which == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return getattr(value, which)


def reference_attributes(pairs: Any) -> tuple[tuple[str, object], ...]:
    return tuple(sorted({kv.key: reference_value(kv.value) for kv in pairs}.items()))


def reference_number_points(message: ExportMetricsServiceRequest) -> list[tuple[object, ...]]:
    """(metric name, attributes, value, time, start, flags) for every gauge and sum point."""
    out = []
    for rm in message.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                data = metric.WhichOneof("data")
                if data not in ("gauge", "sum"):
                    continue
                for point in getattr(metric, data).data_points:
                    value = (
                        float(point.as_int)
                        if point.WhichOneof("value") == "as_int"
                        else point.as_double
                    )
                    if point.flags & 1:
                        value = math.nan
                    exemplars = tuple(
                        (
                            _nan_safe(
                                float(e.as_int)
                                if e.WhichOneof("value") == "as_int"
                                else e.as_double
                            ),
                            e.time_unix_nano,
                            e.trace_id.hex(),
                            e.span_id.hex(),
                            reference_attributes(e.filtered_attributes),
                        )
                        for e in point.exemplars
                    )
                    out.append(
                        (
                            metric.name,
                            reference_attributes(point.attributes),
                            _nan_safe(value),
                            point.time_unix_nano,
                            point.start_time_unix_nano,
                            point.flags,
                            exemplars,
                        )
                    )
    return out


def decoded_number_points(batch: Batch) -> list[tuple[object, ...]]:
    """The same picture as `reference_number_points`, from a decoded batch."""
    return [
        (
            group.metric.name,
            s.attributes,
            _nan_safe(v),
            t,
            st,
            f,
            tuple(
                (_nan_safe(e.value), e.time_unix_nano, e.trace_id, e.span_id, e.filtered_attributes)
                for e in (group.exemplars or {}).get(i, ())
            ),
        )
        for group in batch
        for i, (s, v, t, st, f) in enumerate(
            zip(
                group.series,
                group.values,
                group.timestamps,
                group.start_timestamps,
                group.flags,
                strict=True,
            )
        )
    ]


# A minimal protobuf writer, to encode points in field orders the official encoder never uses.


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field_bytes(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def field_fixed64(number: int, raw: bytes) -> bytes:
    return _varint(number << 3 | 1) + raw


def field_varint(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def reorder_number_point(point: pb.NumberDataPoint, order: list[int]) -> bytes:
    """`point` re-encoded with its fields in `order` (field numbers; absent ones skipped)."""
    import struct

    parts: dict[int, list[bytes]] = {n: [] for n in range(2, 9)}
    if point.start_time_unix_nano:
        parts[2].append(field_fixed64(2, struct.pack("<Q", point.start_time_unix_nano)))
    if point.time_unix_nano:
        parts[3].append(field_fixed64(3, struct.pack("<Q", point.time_unix_nano)))
    if point.WhichOneof("value") == "as_double":
        parts[4].append(field_fixed64(4, struct.pack("<d", point.as_double)))
    if point.WhichOneof("value") == "as_int":
        parts[6].append(field_fixed64(6, struct.pack("<q", point.as_int)))
    parts[5] = [field_bytes(5, e.SerializeToString()) for e in point.exemplars]
    parts[7] = [field_bytes(7, kv.SerializeToString()) for kv in point.attributes]
    if point.flags:
        parts[8].append(field_varint(8, point.flags))
    return b"".join(b"".join(parts[n]) for n in order)


def sum_with_raw_points(name: str, raw_points: list[bytes]) -> bytes:
    """A whole request (one cumulative monotonic sum) whose points are given encoded."""
    sum_body = b"".join(field_bytes(1, raw) for raw in raw_points)
    sum_body += field_varint(2, CUMULATIVE) + field_varint(3, 1)
    metric = field_bytes(1, name.encode()) + field_bytes(7, sum_body)
    scope_metrics = field_bytes(1, InstrumentationScope(name="raw").SerializeToString())
    scope_metrics += field_bytes(2, metric)
    resource_metrics = field_bytes(
        1, Resource(attributes=key_values({"service.name": "raw"})).SerializeToString()
    )
    resource_metrics += field_bytes(2, scope_metrics)
    return field_bytes(1, resource_metrics)
