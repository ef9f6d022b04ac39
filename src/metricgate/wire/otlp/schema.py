"""A private, wire-compatible OTLP metrics schema, declared with `metricgate.wire.descriptors`.

The official `opentelemetry-proto` classes turn every attribute of every data point into message
objects; reading them back costs more than everything else the gateway does. This schema declares
the same field numbers with cheaper types, so a request parses into mostly raw bytes:

- `Gauge.data_points` / `Sum.data_points` are `repeated bytes`: each number point stays as its
  own encoded bytes, which `decode.py` reads at fixed offsets (see there) and whose attribute tail
  is the series cache key;
- `Resource`, `InstrumentationScope` and data point attributes are `bytes`, decoded only when new;
- `as_double` (4) and `as_int` (6, sfixed64) are plain fields, not a oneof: exactly one is set,
  and the value is `as_int` when it is not 0, else `as_double` (not their sum: `-0.0 + 0` is
  `0.0`, and a sender's -0 must stay -0);
- `aggregation_temporality` is an `int32`, so unknown enum values stay visible as numbers.

It also holds the few messages a receiver answers with and an exporter reads back
(`ExportMetricsServiceResponse`, `google.rpc.Status`, `google.rpc.RetryInfo`), so no generated
`googleapis` code is needed.

Invariant: every message here must stay wire-compatible with opentelemetry-proto's metrics v1
(field numbers and wire types); the tests parse official messages with it.
"""

from __future__ import annotations

from typing import Final

from google.protobuf.internal import api_implementation

from metricgate.wire.descriptors import Field, message_classes

_PACKAGE: Final = "metricgate.otlp.wire"

_MESSAGES: Final[dict[str, list[Field]]] = {
    "AnyValue": [
        ("string_value", 1, "string", "value"),
        ("bool_value", 2, "bool", "value"),
        ("int_value", 3, "int64", "value"),
        ("double_value", 4, "double", "value"),
        ("array_value", 5, "ArrayValue", "value"),
        ("kvlist_value", 6, "KeyValueList", "value"),
        ("bytes_value", 7, "bytes", "value"),
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
        ("gauge", 5, "Gauge", "data"),
        ("sum", 7, "Sum", "data"),
        ("histogram", 9, "Histogram", "data"),
        ("exponential_histogram", 10, "ExponentialHistogram", "data"),
        ("summary", 11, "Summary", "data"),
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


_CLASSES: Final = message_classes("metricgate/otlp_wire.proto", _PACKAGE, _MESSAGES)

ExportMetricsServiceRequest: Final = _CLASSES["ExportMetricsServiceRequest"]
NumberDataPoint: Final = _CLASSES["NumberDataPoint"]
NumberDataPointTail: Final = _CLASSES["NumberDataPointTail"]
Resource: Final = _CLASSES["Resource"]
InstrumentationScope: Final = _CLASSES["InstrumentationScope"]
KeyValue: Final = _CLASSES["KeyValue"]
Exemplar: Final = _CLASSES["Exemplar"]
ExportMetricsServiceResponse: Final = _CLASSES["ExportMetricsServiceResponse"]
Status: Final = _CLASSES["Status"]
RetryInfo: Final = _CLASSES["RetryInfo"]

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


NATIVE_MARK: Final = "metricgate.snapshot.native_prometheus"
"""Scope attribute that carries `Metric.native_prometheus` through OTLP, which has no such flag
(named when state snapshots were its only use; files written since then still read)."""
