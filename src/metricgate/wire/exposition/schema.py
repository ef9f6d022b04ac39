"""The `io.prometheus.client` protobuf messages (client_model's metrics.proto), built in code.

Field numbers and types are those of the official `metrics.proto` (the classic parts plus the
created timestamps, float counts and the native-histogram schema field, which marks a histogram
that carries no classic buckets). Messages live in a private descriptor pool, so they never clash
with a generated `io.prometheus.client` module a user may load.

Invariant: every message stays wire-compatible with metrics.proto; the tests decode bytes that
client_golang and Prometheus' own encoder wrote.
"""

from __future__ import annotations

from typing import Any, Final

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

PACKAGE: Final = "io.prometheus.client"
CONTENT_TYPE: Final = (
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
)

COUNTER: Final = 0
GAUGE: Final = 1
SUMMARY: Final = 2
UNTYPED: Final = 3
HISTOGRAM: Final = 4
GAUGE_HISTOGRAM: Final = 5

_F = descriptor_pb2.FieldDescriptorProto
_SCALARS: Final = {
    "double": _F.TYPE_DOUBLE,
    "uint64": _F.TYPE_UINT64,
    "int64": _F.TYPE_INT64,
    "sint32": _F.TYPE_SINT32,
    "int32": _F.TYPE_INT32,
    "string": _F.TYPE_STRING,
}
_MESSAGES: Final[dict[str, list[tuple[str, int, str]]]] = {
    "LabelPair": [("name", 1, "string"), ("value", 2, "string")],
    "Timestamp": [("seconds", 1, "int64"), ("nanos", 2, "int32")],
    "Gauge": [("value", 1, "double")],
    "Counter": [
        ("value", 1, "double"),
        ("exemplar", 2, "Exemplar"),
        ("created_timestamp", 3, "Timestamp"),
    ],
    "Quantile": [("quantile", 1, "double"), ("value", 2, "double")],
    "Summary": [
        ("sample_count", 1, "uint64"),
        ("sample_sum", 2, "double"),
        ("quantile", 3, "*Quantile"),
        ("created_timestamp", 4, "Timestamp"),
    ],
    "Untyped": [("value", 1, "double")],
    "Histogram": [
        ("sample_count", 1, "uint64"),
        ("sample_count_float", 4, "double"),
        ("sample_sum", 2, "double"),
        ("bucket", 3, "*Bucket"),
        ("schema", 5, "sint32"),
        ("created_timestamp", 15, "Timestamp"),
    ],
    "Bucket": [
        ("cumulative_count", 1, "uint64"),
        ("cumulative_count_float", 4, "double"),
        ("upper_bound", 2, "double"),
        ("exemplar", 3, "Exemplar"),
    ],
    "Exemplar": [("label", 1, "*LabelPair"), ("value", 2, "double"), ("timestamp", 3, "Timestamp")],
    "Metric": [
        ("label", 1, "*LabelPair"),
        ("gauge", 2, "Gauge"),
        ("counter", 3, "Counter"),
        ("summary", 4, "Summary"),
        ("untyped", 5, "Untyped"),
        ("histogram", 7, "Histogram"),
        ("timestamp_ms", 6, "int64"),
    ],
    "MetricFamily": [
        ("name", 1, "string"),
        ("help", 2, "string"),
        ("type", 3, "int32"),
        ("metric", 4, "*Metric"),
        ("unit", 5, "string"),
    ],
}


def _file() -> descriptor_pb2.FileDescriptorProto:
    # proto2, so presence of optional scalars (a histogram's schema) is visible.
    file = descriptor_pb2.FileDescriptorProto(
        name="metricgate/exposition_metrics.proto", package=PACKAGE, syntax="proto2"
    )
    for message_name, fields in _MESSAGES.items():
        message = file.message_type.add(name=message_name)
        for field_name, number, type_spec in fields:
            field = message.field.add(name=field_name, number=number, json_name=field_name)
            repeated = type_spec.startswith("*")
            type_name = type_spec.lstrip("*")
            field.label = _F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL
            if type_name in _SCALARS:
                field.type = _SCALARS[type_name]
            else:
                field.type = _F.TYPE_MESSAGE
                field.type_name = f".{PACKAGE}.{type_name}"
    return file


_POOL: Final = descriptor_pool.DescriptorPool()
_POOL.Add(_file())


def _message_class(name: str) -> Any:
    return message_factory.GetMessageClass(_POOL.FindMessageTypeByName(f"{PACKAGE}.{name}"))


MetricFamily: Final = _message_class("MetricFamily")
Metric: Final = _message_class("Metric")
LabelPair: Final = _message_class("LabelPair")
