"""Prometheus remote-write wire formats (1.0 and 2.0), shared by the receiver and the exporter.

`schema` holds the protobuf messages (declared with `metricgate.wire.descriptors`; the names most
users need are re-exported here), `layout` the byte shape of a 1.0 `TimeSeries` entry the receiver
reads without a parse, `encode` the entries the exporter writes from cached label bytes, and `v2`
the 1.0 -> 2.0 request conversion.

Invariant: this package only reads and writes the wire; it holds no receiver or exporter
behaviour (sharding, fragments, label validation, sending stay with the components).
"""

from __future__ import annotations

from metricgate.wire.remotewrite.schema import (
    METRIC_TYPE_COUNTER,
    METRIC_TYPE_GAUGE,
    METRIC_TYPE_HISTOGRAM,
    METRIC_TYPE_SUMMARY,
    METRIC_TYPE_UNKNOWN,
    STALE_NAN_BITS,
    V2_CONTENT_TYPE,
    Label,
    MetricMetadata,
    RequestV2,
    Sample,
    TimeSeries,
    TimeSeriesV2,
    WriteRequest,
)

__all__ = [
    "METRIC_TYPE_COUNTER",
    "METRIC_TYPE_GAUGE",
    "METRIC_TYPE_HISTOGRAM",
    "METRIC_TYPE_SUMMARY",
    "METRIC_TYPE_UNKNOWN",
    "STALE_NAN_BITS",
    "V2_CONTENT_TYPE",
    "Label",
    "MetricMetadata",
    "RequestV2",
    "Sample",
    "TimeSeries",
    "TimeSeriesV2",
    "WriteRequest",
]
