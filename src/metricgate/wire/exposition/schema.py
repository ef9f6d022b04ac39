"""The `io.prometheus.client` protobuf messages (client_model's metrics.proto), built in code.

Field numbers and types are those of the official `metrics.proto` (the classic parts plus the
created timestamps, float counts and the native-histogram schema field, which marks a histogram
that carries no classic buckets). Messages live in a private descriptor pool, so they never clash
with a generated `io.prometheus.client` module a user may load.

Invariant: every message stays wire-compatible with metrics.proto; the tests decode bytes that
client_golang and Prometheus' own encoder wrote.
"""

from __future__ import annotations

from typing import Final

from metricgate.wire.descriptors import Field, message_classes

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

_MESSAGES: Final[dict[str, list[Field]]] = {
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


# proto2, so presence of optional scalars (a histogram's schema) is visible.
_CLASSES: Final = message_classes(
    "metricgate/exposition_metrics.proto", PACKAGE, _MESSAGES, syntax="proto2"
)

MetricFamily: Final = _CLASSES["MetricFamily"]
Metric: Final = _CLASSES["Metric"]
LabelPair: Final = _CLASSES["LabelPair"]
