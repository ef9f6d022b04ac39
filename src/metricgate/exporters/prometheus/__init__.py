"""The `prometheus` exporter: a Prometheus / OpenMetrics scrape endpoint fed by the pipeline.

`config.py` holds the config model, `store.py` the per-series state (staleness, expiry, clashes)
kept in `entries.py` objects, `points.py` delta accumulation and unit scaling, `render.py` the two
text formats, `negotiate.py` the Accept handling and `exporter.py` the component with its HTTP
server and expiry timer.
"""

from metricgate.exporters.prometheus.config import PrometheusExporterConfig
from metricgate.exporters.prometheus.exporter import FACTORY, PrometheusExporter
from metricgate.exporters.prometheus.store import Store

__all__ = ["FACTORY", "PrometheusExporter", "PrometheusExporterConfig", "Store"]
