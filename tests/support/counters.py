"""An exporter's own counters (sent, failed, retries) read from its host's telemetry."""

from __future__ import annotations

from metricgate.pipeline.queue import RetrySettings
from metricgate.telemetry.metrics import SelfMetrics

FAST = RetrySettings(initial_interval=0.01, max_interval=0.05, max_elapsed_time=0)


class Counters:
    """The core's counters of one exporter."""

    def __init__(self, telemetry: SelfMetrics, exporter_id: str) -> None:
        self.telemetry = telemetry
        self.exporter_id = exporter_id

    def value(self, name: str, **labels: str) -> float:
        found = self.telemetry.registry.get_sample_value(
            name, {"exporter": self.exporter_id, **labels}
        )
        return found or 0.0

    @property
    def sent(self) -> float:
        return self.value("metricgate_exporter_sent_points_total")

    def failed(self, reason: str = "permanent") -> float:
        return self.value("metricgate_exporter_send_failed_points_total", reason=reason)

    @property
    def retries(self) -> float:
        return self.value("metricgate_exporter_retries_total")
