"""The `datadog` exporter: OTLP-shaped batches as Datadog v2 series (`POST /api/v2/series`).

`config.py` holds the config model, `tags.py` tags and host, `mapping.py` the kind mapping and
cumulative state, `payload.py` size-limited compressed bodies, `exporter.py` the component.
Invariant: a batch is mapped once; retries resend only the bodies the intake has not accepted.
"""

from metricgate.exporters.datadog.config import DatadogExporterConfig
from metricgate.exporters.datadog.exporter import FACTORY, DatadogExporter
from metricgate.exporters.datadog.mapping import Mapper

__all__ = ["FACTORY", "DatadogExporter", "DatadogExporterConfig", "Mapper"]
