"""The `cloudwatch` exporter: OTLP-shaped batches as CloudWatch `PutMetricData` requests.

`config.py` holds the config model, `units.py` the unit names, `mapping.py` the kind mapping,
dimensions and cumulative state, `requests.py` the limit-respecting requests, `exporter.py` the
component, `emf.py` the `mode: emf` component (Embedded Metric Format logs). Invariant: a
batch is mapped once; retries resend only the requests not accepted.
"""

from metricgate.exporters.cloudwatch.config import CloudWatchExporterConfig
from metricgate.exporters.cloudwatch.emf import EmfExporter
from metricgate.exporters.cloudwatch.exporter import FACTORY, CloudWatchExporter
from metricgate.exporters.cloudwatch.mapping import Mapper

__all__ = ["FACTORY", "CloudWatchExporter", "CloudWatchExporterConfig", "EmfExporter", "Mapper"]
