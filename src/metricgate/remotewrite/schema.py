"""Prometheus remote-write protobuf messages, built in code in a private descriptor pool.

Remote-write 1.0 (package `prometheus`, Prometheus' `prompb/remote.proto` and `types.proto`):
`WriteRequest`, `TimeSeries`, `Label`, `Sample`, `Exemplar`, `Histogram`, `BucketSpan`,
`MetricMetadata`. Remote-write 2.0 (package `io.prometheus.write.v2`): `RequestV2`,
`TimeSeriesV2`, `SampleV2`, `ExemplarV2`, `MetadataV2`, `HistogramV2`, `BucketSpanV2`.
Enums are declared as `int32` (the same varint on the wire), so unknown values stay visible as
numbers; their values are the `METRIC_TYPE_*` and `RESET_HINT_*` constants below.

The receiver-only `WriteRequestFlat` and `TimeSeriesRaw` parse the same 1.0 bytes but leave parts
encoded: each `timeseries` entry (the receiver reads a known series' entry by its byte layout), and
each label (decoded once per distinct label, not per series), exemplar and native histogram.

Being in a private pool, these classes never clash with generated `prompb` code a user may load.

Invariant: every message here stays wire-compatible with Prometheus' protos (field numbers and
wire types); the tests compare encodings with hand-built bytes.
"""

from __future__ import annotations

from typing import Any, Final

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_F = descriptor_pb2.FieldDescriptorProto
_SCALARS: Final = {
    "double": _F.TYPE_DOUBLE,
    "uint64": _F.TYPE_UINT64,
    "int64": _F.TYPE_INT64,
    "sint64": _F.TYPE_SINT64,
    "int32": _F.TYPE_INT32,
    "sint32": _F.TYPE_SINT32,
    "uint32": _F.TYPE_UINT32,
    "string": _F.TYPE_STRING,
    "bytes": _F.TYPE_BYTES,
}

# Field spec: (name, number, type) or (name, number, type, oneof); "*T" is repeated.
_Field = tuple[str, int, str] | tuple[str, int, str, str]

_HISTOGRAM: Final[list[_Field]] = [
    ("count_int", 1, "uint64", "count"),
    ("count_float", 2, "double", "count"),
    ("sum", 3, "double"),
    ("schema", 4, "sint32"),
    ("zero_threshold", 5, "double"),
    ("zero_count_int", 6, "uint64", "zero_count"),
    ("zero_count_float", 7, "double", "zero_count"),
    ("negative_spans", 8, "*BucketSpan"),
    ("negative_deltas", 9, "*sint64"),
    ("negative_counts", 10, "*double"),
    ("positive_spans", 11, "*BucketSpan"),
    ("positive_deltas", 12, "*sint64"),
    ("positive_counts", 13, "*double"),
    ("reset_hint", 14, "int32"),
    ("timestamp", 15, "int64"),
    ("custom_values", 16, "*double"),
]
_BUCKET_SPAN: Final[list[_Field]] = [("offset", 1, "sint32"), ("length", 2, "uint32")]

_V1: Final[dict[str, list[_Field]]] = {
    "WriteRequest": [("timeseries", 1, "*TimeSeries"), ("metadata", 3, "*MetricMetadata")],
    "MetricMetadata": [
        ("type", 1, "int32"),
        ("metric_family_name", 2, "string"),
        ("help", 4, "string"),
        ("unit", 5, "string"),
    ],
    "Sample": [("value", 1, "double"), ("timestamp", 2, "int64")],
    "Exemplar": [("labels", 1, "*Label"), ("value", 2, "double"), ("timestamp", 3, "int64")],
    "Histogram": _HISTOGRAM,
    "BucketSpan": _BUCKET_SPAN,
    "TimeSeries": [
        ("labels", 1, "*Label"),
        ("samples", 2, "*Sample"),
        ("exemplars", 3, "*Exemplar"),
        ("histograms", 4, "*Histogram"),
    ],
    "Label": [("name", 1, "string"), ("value", 2, "string")],
    # Receiver-side views of the same bytes (see the module docstring).
    "WriteRequestFlat": [("timeseries", 1, "*bytes"), ("metadata", 3, "*MetricMetadata")],
    "TimeSeriesRaw": [
        ("labels", 1, "*bytes"),
        ("samples", 2, "*Sample"),
        ("exemplars", 3, "*bytes"),
        ("histograms", 4, "*bytes"),
    ],
}

_V2: Final[dict[str, list[_Field]]] = {
    "Request": [("symbols", 4, "*string"), ("timeseries", 5, "*TimeSeries")],
    "TimeSeries": [
        ("labels_refs", 1, "*uint32"),
        ("samples", 2, "*Sample"),
        ("histograms", 3, "*Histogram"),
        ("exemplars", 4, "*Exemplar"),
        ("metadata", 5, "Metadata"),
        ("created_timestamp", 6, "int64"),
    ],
    "Exemplar": [
        ("labels_refs", 1, "*uint32"),
        ("value", 2, "double"),
        ("timestamp", 3, "int64"),
    ],
    "Sample": [("value", 1, "double"), ("timestamp", 2, "int64")],
    "Metadata": [("type", 1, "int32"), ("help_ref", 3, "uint32"), ("unit_ref", 4, "uint32")],
    "Histogram": _HISTOGRAM,
    "BucketSpan": _BUCKET_SPAN,
}

V1_PACKAGE: Final = "prometheus"
V2_PACKAGE: Final = "io.prometheus.write.v2"

V2_CONTENT_TYPE: Final = "application/x-protobuf;proto=io.prometheus.write.v2.Request"
"""The `Content-Type` of a 2.0 request (1.0 is plain `application/x-protobuf`)."""

# MetricMetadata.type (1.0) and Metadata.type (2.0) share these values.
METRIC_TYPE_UNKNOWN: Final = 0
METRIC_TYPE_COUNTER: Final = 1
METRIC_TYPE_GAUGE: Final = 2
METRIC_TYPE_HISTOGRAM: Final = 3
METRIC_TYPE_GAUGEHISTOGRAM: Final = 4
METRIC_TYPE_SUMMARY: Final = 5
METRIC_TYPE_INFO: Final = 6
METRIC_TYPE_STATESET: Final = 7

RESET_HINT_UNKNOWN: Final = 0
RESET_HINT_YES: Final = 1
RESET_HINT_NO: Final = 2
RESET_HINT_GAUGE: Final = 3

STALE_NAN_BITS: Final = 0x7FF0000000000002
"""The bit pattern of Prometheus' staleness marker (an ordinary NaN is `0x7ff8000000000001`)."""


def _file(
    name: str, package: str, messages: dict[str, list[_Field]]
) -> descriptor_pb2.FileDescriptorProto:
    file = descriptor_pb2.FileDescriptorProto(name=name, package=package, syntax="proto3")
    for message_name, fields in messages.items():
        message = file.message_type.add(name=message_name)
        oneofs: dict[str, int] = {}
        for spec in fields:
            field_name, number, type_spec = spec[0], spec[1], spec[2]
            field = message.field.add(name=field_name, number=number, json_name=field_name)
            repeated = type_spec.startswith("*")
            type_name = type_spec.lstrip("*")
            field.label = _F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL
            if type_name in _SCALARS:
                field.type = _SCALARS[type_name]
            else:
                field.type = _F.TYPE_MESSAGE
                field.type_name = f".{package}.{type_name}"
            if len(spec) == 4:
                oneof = spec[3]
                if oneof not in oneofs:
                    oneofs[oneof] = len(message.oneof_decl)
                    message.oneof_decl.add(name=oneof)
                field.oneof_index = oneofs[oneof]
    return file


_POOL: Final = descriptor_pool.DescriptorPool()
_POOL.Add(_file("metricgate/remote_write_v1.proto", V1_PACKAGE, _V1))
_POOL.Add(_file("metricgate/remote_write_v2.proto", V2_PACKAGE, _V2))


def _message_class(package: str, name: str) -> Any:
    return message_factory.GetMessageClass(_POOL.FindMessageTypeByName(f"{package}.{name}"))


WriteRequest: Final = _message_class(V1_PACKAGE, "WriteRequest")
TimeSeries: Final = _message_class(V1_PACKAGE, "TimeSeries")
Label: Final = _message_class(V1_PACKAGE, "Label")
Sample: Final = _message_class(V1_PACKAGE, "Sample")
Exemplar: Final = _message_class(V1_PACKAGE, "Exemplar")
Histogram: Final = _message_class(V1_PACKAGE, "Histogram")
BucketSpan: Final = _message_class(V1_PACKAGE, "BucketSpan")
MetricMetadata: Final = _message_class(V1_PACKAGE, "MetricMetadata")
WriteRequestFlat: Final = _message_class(V1_PACKAGE, "WriteRequestFlat")
TimeSeriesRaw: Final = _message_class(V1_PACKAGE, "TimeSeriesRaw")

RequestV2: Final = _message_class(V2_PACKAGE, "Request")
TimeSeriesV2: Final = _message_class(V2_PACKAGE, "TimeSeries")
SampleV2: Final = _message_class(V2_PACKAGE, "Sample")
ExemplarV2: Final = _message_class(V2_PACKAGE, "Exemplar")
MetadataV2: Final = _message_class(V2_PACKAGE, "Metadata")
HistogramV2: Final = _message_class(V2_PACKAGE, "Histogram")
BucketSpanV2: Final = _message_class(V2_PACKAGE, "BucketSpan")
