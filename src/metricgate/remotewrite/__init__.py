"""Prometheus remote-write wire formats (1.0 and 2.0), shared by the receiver and the exporter.

`schema` holds the protobuf messages, built in code in a private descriptor pool; the names most
users need are re-exported here.

Invariant: this package only describes the wire; it holds no receiver or exporter behaviour.
"""

from __future__ import annotations

from metricgate.remotewrite.schema import (
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
