"""The remote-write exporter's own metrics, registered once per gateway registry.

Samples (not points: a histogram point is several samples) sent, failed (gave up on, by reason),
retried (re-sent after a retryable answer) and dropped (refused by the backend, by reason), per
exporter. The shard count, the protocol in use (`..._protocol{protocol="1.0"|"2.0"}`) and the last
successful send time are gauges the exporter registers itself (they read its live state).

Invariant: every sample handed to a shard is counted exactly once as sent, failed or dropped.
"""

from __future__ import annotations

import weakref
from typing import Final

from prometheus_client import CollectorRegistry, Counter

from metricgate.telemetry.metrics import SelfMetrics


class RemoteWriteMetrics:
    """Counters of all remote-write exporters of one gateway."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.sent: Final = Counter(
            "metricgate_exporter_remote_write_sent_samples",
            "Samples a remote-write exporter delivered (2xx).",
            ["exporter"],
            registry=registry,
        )
        self.failed: Final = Counter(
            "metricgate_exporter_remote_write_failed_samples",
            "Samples a remote-write exporter gave up on after retryable errors, by reason.",
            ["exporter", "reason"],
            registry=registry,
        )
        self.retried: Final = Counter(
            "metricgate_exporter_remote_write_retried_samples",
            "Samples a remote-write exporter sent again after a retryable error.",
            ["exporter"],
            registry=registry,
        )
        self.dropped: Final = Counter(
            "metricgate_exporter_remote_write_dropped_samples",
            "Samples a remote-write backend refused for good (4xx other than 429), by reason.",
            ["exporter", "reason"],
            registry=registry,
        )

        self.queue_dropped: Final = Counter(
            "metricgate_exporter_remote_write_queue_dropped_records",
            "Records a remote-write persistent queue dropped, by reason "
            "(queue_full, corrupt, truncated).",
            ["exporter", "reason"],
            registry=registry,
        )


_BY_REGISTRY: weakref.WeakKeyDictionary[CollectorRegistry, RemoteWriteMetrics] = (
    weakref.WeakKeyDictionary()
)


def remote_write_metrics(telemetry: SelfMetrics) -> RemoteWriteMetrics:
    """The counters registered in `telemetry`'s registry (created on first use)."""
    found = _BY_REGISTRY.get(telemetry.registry)
    if found is None:
        found = _BY_REGISTRY[telemetry.registry] = RemoteWriteMetrics(telemetry.registry)
    return found
