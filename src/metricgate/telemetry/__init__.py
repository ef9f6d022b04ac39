"""metricgate's own telemetry: self-metrics, the health/metrics server, structured logs."""

from metricgate.telemetry.logs import configure_logging
from metricgate.telemetry.metrics import SelfMetrics
from metricgate.telemetry.server import TelemetryServer

__all__ = ["SelfMetrics", "TelemetryServer", "configure_logging"]
