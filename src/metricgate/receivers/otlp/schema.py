"""A private, wire-compatible OTLP metrics schema, built in code in its own descriptor pool.

The official `opentelemetry-proto` classes turn every attribute of every data point into message
objects; reading them back costs more than everything else the gateway does. This schema declares
the same field numbers with cheaper types, so a request parses into mostly raw bytes:

- `Gauge.data_points` / `Sum.data_points` are `repeated bytes`: each number point stays as its
  own encoded bytes, which `decode.py` reads at fixed offsets (see there) and whose attribute tail
  is the series cache key;
- `Resource`, `InstrumentationScope` and data point attributes are `bytes`, decoded only when new;
- `as_double` (4) and `as_int` (6, sfixed64) are plain fields, not a oneof: exactly one is set,
  so `as_double + as_int` is the value with no branch;
- `aggregation_temporality` is an `int32`, so unknown enum values stay visible as numbers.

It also holds the few messages the receiver answers with (`ExportMetricsServiceResponse`,
`google.rpc.Status`, `google.rpc.RetryInfo`), so no generated `googleapis` code is needed.

Invariant: every message here must stay wire-compatible with opentelemetry-proto's metrics v1
(field numbers and wire types); the tests parse official messages with it.
"""

from __future__ import annotations

from typing import Any, Final

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.internal import api_implementation

_F = descriptor_pb2.FieldDescriptorProto
_SCALARS: Final = {
    "double": _F.TYPE_DOUBLE,
    "fixed64": _F.TYPE_FIXED64,
    "sfixed64": _F.TYPE_SFIXED64,
    "uint64": _F.TYPE_UINT64,
    "int64": _F.TYPE_INT64,
    "int32": _F.TYPE_INT32,
    "sint32": _F.TYPE_SINT32,
    "uint32": _F.TYPE_UINT32,
    "bool": _F.TYPE_BOOL,
    "string": _F.TYPE_STRING,
    "bytes": _F.TYPE_BYTES,
}
_PACKAGE: Final = "metricgate.otlp.wire"

# name -> [(field, number, type)]; "*T" is repeated, "?T" is proto3 `optional` (has presence),
# "|T" belongs to the message's single oneof (named `value` or `data`).
_MESSAGES: Final[dict[str, list[tuple[str, int, str]]]] = {
    "AnyValue": [
        ("string_value", 1, "|string"),
        ("bool_value", 2, "|bool"),
        ("int_value", 3, "|int64"),
        ("double_value", 4, "|double"),
        ("array_value", 5, "|ArrayValue"),
        ("kvlist_value", 6, "|KeyValueList"),
        ("bytes_value", 7, "|bytes"),
    ],
    "ArrayValue": [("values", 1, "*AnyValue")],
    "KeyValueList": [("values", 1, "*KeyValue")],
    "KeyValue": [("key", 1, "string"), ("value", 2, "AnyValue")],
    "Resource": [("attributes", 1, "*KeyValue")],
    "InstrumentationScope": [
        ("name", 1, "string"),
        ("version", 2, "string"),
        ("attributes", 3, "*KeyValue"),
    ],
    "ExportMetricsServiceRequest": [("resource_metrics", 1, "*ResourceMetrics")],
    "ResourceMetrics": [
        ("resource", 1, "bytes"),
        ("scope_metrics", 2, "*ScopeMetrics"),
        ("schema_url", 3, "string"),
    ],
    "ScopeMetrics": [
        ("scope", 1, "bytes"),
        ("metrics", 2, "*Metric"),
        ("schema_url", 3, "string"),
    ],
    "Metric": [
        ("name", 1, "string"),
        ("description", 2, "string"),
        ("unit", 3, "string"),
        ("gauge", 5, "|Gauge"),
        ("sum", 7, "|Sum"),
        ("histogram", 9, "|Histogram"),
        ("exponential_histogram", 10, "|ExponentialHistogram"),
        ("summary", 11, "|Summary"),
    ],
    "Gauge": [("data_points", 1, "*bytes")],
    "Sum": [
        ("data_points", 1, "*bytes"),
        ("aggregation_temporality", 2, "int32"),
        ("is_monotonic", 3, "bool"),
    ],
    "Histogram": [
        ("data_points", 1, "*HistogramDataPoint"),
        ("aggregation_temporality", 2, "int32"),
    ],
    "ExponentialHistogram": [
        ("data_points", 1, "*ExponentialHistogramDataPoint"),
        ("aggregation_temporality", 2, "int32"),
    ],
    "Summary": [("data_points", 1, "*SummaryDataPoint")],
    "NumberDataPoint": [
        ("attributes", 7, "*bytes"),
        ("start_time_unix_nano", 2, "fixed64"),
        ("time_unix_nano", 3, "fixed64"),
        ("as_double", 4, "double"),
        ("exemplars", 5, "*Exemplar"),
        ("as_int", 6, "sfixed64"),
        ("flags", 8, "uint32"),
    ],
    # The fields a number point's attribute tail must NOT contain to serve as its series key:
    # every occurrence of them lands in a list (packed or not), so presence is visible.
    "NumberDataPointTail": [
        ("start_time_unix_nano", 2, "*fixed64"),
        ("time_unix_nano", 3, "*fixed64"),
        ("as_double", 4, "*fixed64"),
        ("exemplars", 5, "*bytes"),
        ("as_int", 6, "*fixed64"),
        ("flags", 8, "*uint32"),
    ],
    "HistogramDataPoint": [
        ("attributes", 9, "*bytes"),
        ("start_time_unix_nano", 2, "fixed64"),
        ("time_unix_nano", 3, "fixed64"),
        ("count", 4, "fixed64"),
        ("sum", 5, "?double"),
        ("bucket_counts", 6, "*fixed64"),
        ("explicit_bounds", 7, "*double"),
        ("exemplars", 8, "*Exemplar"),
        ("flags", 10, "uint32"),
        ("min", 11, "?double"),
        ("max", 12, "?double"),
    ],
    "ExponentialHistogramDataPoint": [
        ("attributes", 1, "*bytes"),
        ("start_time_unix_nano", 2, "fixed64"),
        ("time_unix_nano", 3, "fixed64"),
        ("count", 4, "fixed64"),
        ("sum", 5, "?double"),
        ("scale", 6, "sint32"),
        ("zero_count", 7, "fixed64"),
        ("positive", 8, "Buckets"),
        ("negative", 9, "Buckets"),
        ("flags", 10, "uint32"),
        ("exemplars", 11, "*Exemplar"),
        ("min", 12, "?double"),
        ("max", 13, "?double"),
        ("zero_threshold", 14, "double"),
    ],
    "Buckets": [("offset", 1, "sint32"), ("bucket_counts", 2, "*uint64")],
    "SummaryDataPoint": [
        ("attributes", 7, "*bytes"),
        ("start_time_unix_nano", 2, "fixed64"),
        ("time_unix_nano", 3, "fixed64"),
        ("count", 4, "fixed64"),
        ("sum", 5, "double"),
        ("quantile_values", 6, "*ValueAtQuantile"),
        ("flags", 8, "uint32"),
    ],
    "ValueAtQuantile": [("quantile", 1, "double"), ("value", 2, "double")],
    "Exemplar": [
        ("filtered_attributes", 7, "*KeyValue"),
        ("time_unix_nano", 2, "fixed64"),
        ("as_double", 3, "double"),
        ("span_id", 4, "bytes"),
        ("trace_id", 5, "bytes"),
        ("as_int", 6, "sfixed64"),
    ],
    "ExportMetricsServiceResponse": [("partial_success", 1, "ExportMetricsPartialSuccess")],
    "ExportMetricsPartialSuccess": [
        ("rejected_data_points", 1, "int64"),
        ("error_message", 2, "string"),
    ],
    # google.rpc.Status, google.protobuf.Any, google.rpc.RetryInfo, google.protobuf.Duration
    "Status": [("code", 1, "int32"), ("message", 2, "string"), ("details", 3, "*Any")],
    "Any": [("type_url", 1, "string"), ("value", 2, "bytes")],
    "RetryInfo": [("retry_delay", 1, "Duration")],
    "Duration": [("seconds", 1, "int64"), ("nanos", 2, "int32")],
}


def _file_descriptor() -> descriptor_pb2.FileDescriptorProto:
    file = descriptor_pb2.FileDescriptorProto(
        name="metricgate/otlp_wire.proto", package=_PACKAGE, syntax="proto3"
    )
    for message_name, fields in _MESSAGES.items():
        message = file.message_type.add(name=message_name)
        synthetic: list[str] = []
        for field_name, number, spec in fields:
            field = message.field.add(name=field_name, number=number, json_name=field_name)
            marker, type_name = (spec[0], spec[1:]) if spec[0] in "*?|" else ("", spec)
            field.label = _F.LABEL_REPEATED if marker == "*" else _F.LABEL_OPTIONAL
            if type_name in _SCALARS:
                field.type = _SCALARS[type_name]
            else:
                field.type = _F.TYPE_MESSAGE
                field.type_name = f".{_PACKAGE}.{type_name}"
            if marker == "|":
                if not message.oneof_decl:
                    message.oneof_decl.add(name="data" if message_name == "Metric" else "value")
                field.oneof_index = 0
            elif marker == "?":
                field.proto3_optional = True
                synthetic.append(field_name)
        for index, field_name in enumerate(synthetic, start=len(message.oneof_decl)):
            message.oneof_decl.add(name=f"_{field_name}")
            next(f for f in message.field if f.name == field_name).oneof_index = index
    return file


_POOL: Final = descriptor_pool.DescriptorPool()
_POOL.Add(_file_descriptor())


def _message_class(name: str) -> Any:
    return message_factory.GetMessageClass(_POOL.FindMessageTypeByName(f"{_PACKAGE}.{name}"))


ExportMetricsServiceRequest: Final = _message_class("ExportMetricsServiceRequest")
NumberDataPoint: Final = _message_class("NumberDataPoint")
NumberDataPointTail: Final = _message_class("NumberDataPointTail")
Resource: Final = _message_class("Resource")
InstrumentationScope: Final = _message_class("InstrumentationScope")
KeyValue: Final = _message_class("KeyValue")
Exemplar: Final = _message_class("Exemplar")
ExportMetricsServiceResponse: Final = _message_class("ExportMetricsServiceResponse")
Status: Final = _message_class("Status")
RetryInfo: Final = _message_class("RetryInfo")

RETRY_INFO_TYPE_URL: Final = "type.googleapis.com/google.rpc.RetryInfo"


def require_fast_protobuf() -> None:
    """Refuse to run on protobuf's pure-Python backend, about 200 times slower than upb."""
    implementation = api_implementation.Type()
    if implementation == "python":
        raise RuntimeError(
            "the otlp receiver needs the upb (or cpp) protobuf backend, but protobuf runs its "
            "pure-Python implementation, about 200x slower. Unset "
            "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION and install a binary protobuf wheel "
            "(pip install --force-reinstall protobuf)."
        )
