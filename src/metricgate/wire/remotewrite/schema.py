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

Declared with `metricgate.wire.descriptors`, in private pools: these classes never clash with
generated `prompb` code a user may load.

Invariant: every message here stays wire-compatible with Prometheus' protos (field numbers and
wire types); the tests compare encodings with hand-built bytes.
"""

from __future__ import annotations

from typing import Final

from metricgate.wire.descriptors import Field, message_classes

_Field = tuple[str, int, str] | tuple[str, int, str, str]

_HISTOGRAM: Final[list[Field]] = [
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
_BUCKET_SPAN: Final[list[Field]] = [("offset", 1, "sint32"), ("length", 2, "uint32")]

_V1: Final[dict[str, list[Field]]] = {
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

_V2: Final[dict[str, list[Field]]] = {
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


_V1_CLASSES: Final = message_classes("metricgate/remote_write_v1.proto", V1_PACKAGE, _V1)
_V2_CLASSES: Final = message_classes("metricgate/remote_write_v2.proto", V2_PACKAGE, _V2)

WriteRequest: Final = _V1_CLASSES["WriteRequest"]
TimeSeries: Final = _V1_CLASSES["TimeSeries"]
Label: Final = _V1_CLASSES["Label"]
Sample: Final = _V1_CLASSES["Sample"]
Exemplar: Final = _V1_CLASSES["Exemplar"]
Histogram: Final = _V1_CLASSES["Histogram"]
BucketSpan: Final = _V1_CLASSES["BucketSpan"]
MetricMetadata: Final = _V1_CLASSES["MetricMetadata"]
WriteRequestFlat: Final = _V1_CLASSES["WriteRequestFlat"]
TimeSeriesRaw: Final = _V1_CLASSES["TimeSeriesRaw"]

RequestV2: Final = _V2_CLASSES["Request"]
TimeSeriesV2: Final = _V2_CLASSES["TimeSeries"]
SampleV2: Final = _V2_CLASSES["Sample"]
ExemplarV2: Final = _V2_CLASSES["Exemplar"]
MetadataV2: Final = _V2_CLASSES["Metadata"]
HistogramV2: Final = _V2_CLASSES["Histogram"]
BucketSpanV2: Final = _V2_CLASSES["BucketSpan"]
