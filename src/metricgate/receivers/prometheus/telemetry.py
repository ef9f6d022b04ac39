"""The `prometheus` receiver's own metrics: scrapes, discovery refreshes and targets by health.

Registered on the gateway's `SelfMetrics` by every job (registration is idempotent, so the jobs
and receivers of one gateway share the families); points scraped are the core's
`metricgate_receiver_accepted_points{transport="scrape"}`.
"""

from __future__ import annotations

from metricgate.telemetry.metrics import Counter, Gauge, SelfMetrics


class ScrapeMetrics:
    """The counters and the targets gauge of `prometheus` receivers."""

    def __init__(self, telemetry: SelfMetrics) -> None:
        self.accepted: Counter = telemetry.receiver_accepted
        self.scrapes: Counter = telemetry.counter(
            "metricgate_receiver_scrapes",
            "Scrapes a prometheus receiver made, per job.",
            ["receiver", "job"],
        )
        self.scrape_failures: Counter = telemetry.counter(
            "metricgate_receiver_scrape_failures",
            "Scrapes that failed, per job and reason (http_status, timeout, connection, "
            "body_size_limit, content_type, parse, sample_limit, label_limit, target_limit, "
            "pipeline).",
            ["receiver", "job", "reason"],
        )
        self.discovery_refreshes: Counter = telemetry.counter(
            "metricgate_receiver_discovery_refreshes",
            "Service discovery refreshes of a prometheus receiver, per job and mechanism.",
            ["receiver", "job", "mechanism"],
        )
        self.discovery_failures: Counter = telemetry.counter(
            "metricgate_receiver_discovery_failures",
            "Service discovery refreshes that failed (the last targets were kept).",
            ["receiver", "job", "mechanism"],
        )
        self.targets: Gauge = telemetry.gauge(
            "metricgate_receiver_scrape_targets",
            "Targets of a prometheus receiver by job and health of their last scrape.",
            ["receiver", "job", "state"],
        )
