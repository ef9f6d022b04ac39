"""The loadbalancing exporter's own metrics: the ring, the resolutions, and each member's sends.

Every exporter registers the families on the gateway's `SelfMetrics` (`LoadBalancingMetrics`;
registration is idempotent, so all exporters of a gateway share them); each member gets a
`MemberStats` holding its pre-bound children, so recording a part costs two method calls. The
gauges (members, healthy, last success) read each running exporter's members at scrape time
(`LoadBalancingMetrics.observe`).

Invariant: a member's labelled series exist exactly while it is in some exporter's ring; `drop()`
removes them when it leaves, so cardinality is bounded by the current members.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import Final

from metricgate.telemetry.metrics import Counter, Gauge, Histogram, SelfMetrics

log = logging.getLogger("metricgate.exporters.loadbalancing")

LATENCY_BUCKETS: Final = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)
"""Seconds; a healthy LAN member answers in milliseconds, a dead one at the otlp timeout (10s)."""

FAILED_REASONS: Final = ("retryable", "permanent")


class MemberStats:
    """One member's pre-bound metric children and health, owned by one exporter."""

    __slots__ = (
        "address",
        "exporter_id",
        "failed_permanent",
        "failed_retryable",
        "healthy",
        "last_success",
        "latency",
        "metrics",
        "sent",
    )

    def __init__(self, metrics: LoadBalancingMetrics, exporter_id: str, address: str) -> None:
        self.metrics = metrics
        self.exporter_id = exporter_id
        self.address = address
        self.sent = metrics.sent.labels(exporter_id, address)
        self.failed_retryable = metrics.failed.labels(exporter_id, address, "retryable")
        self.failed_permanent = metrics.failed.labels(exporter_id, address, "permanent")
        self.latency = metrics.latency.labels(exporter_id, address)
        self.healthy = True
        """False from a retryable failure (unreachable, timeout, 5xx) to the next success."""
        self.last_success = 0.0

    def succeeded(self, points: int) -> None:
        self.sent.inc(points)
        self.last_success = time.time()
        if not self.healthy:
            self.healthy = True
            log.info(
                "loadbalancing member recovered",
                extra={"exporter": self.exporter_id, "member": self.address},
            )

    def failed(self, points: int, permanent: bool, error: BaseException) -> None:
        """Count a failed part; a retryable failure makes the member unhealthy."""
        if permanent:
            self.failed_permanent.inc(points)
            return
        self.failed_retryable.inc(points)
        if self.healthy:
            self.healthy = False
            log.warning(
                "loadbalancing member failing",
                extra={
                    "exporter": self.exporter_id,
                    "member": self.address,
                    "error": f"{type(error).__name__}: {error}",
                },
            )

    def drop(self) -> None:
        """Remove this member's series (it left the ring)."""
        labels = (self.exporter_id, self.address)
        for metric in (self.metrics.sent, self.metrics.latency):
            with contextlib.suppress(KeyError):
                metric.remove(*labels)
        for reason in FAILED_REASONS:
            with contextlib.suppress(KeyError):
                self.metrics.failed.remove(*labels, reason)


MembersView = Callable[[], dict[str, MemberStats]]
"""An exporter's current members, read at scrape time."""


class LoadBalancingMetrics:
    """The instruments of the loadbalancing exporters of one gateway."""

    def __init__(self, telemetry: SelfMetrics) -> None:
        self.ring_changes: Final[Counter] = telemetry.counter(
            "metricgate_exporter_loadbalancing_ring_changes",
            "Times a loadbalancing exporter rebuilt its ring because the members changed.",
            ["exporter"],
        )
        self.resolutions: Final[Counter] = telemetry.counter(
            "metricgate_exporter_loadbalancing_resolutions",
            "Member resolutions, by resolver (static, dns) and outcome "
            "(success, empty, error, timeout).",
            ["exporter", "resolver", "outcome"],
        )
        self.sent: Final[Counter] = telemetry.counter(
            "metricgate_exporter_loadbalancing_member_sent_points",
            "Data points a member accepted.",
            ["exporter", "member"],
        )
        self.failed: Final[Counter] = telemetry.counter(
            "metricgate_exporter_loadbalancing_member_failed_points",
            "Data points of failed sends to a member, by reason: retryable (kept and sent "
            "again) or permanent (dropped).",
            ["exporter", "member", "reason"],
        )
        self.latency: Final[Histogram] = telemetry.histogram(
            "metricgate_exporter_loadbalancing_member_send_duration_seconds",
            "Duration of one send to a member, failed ones included.",
            ["exporter", "member"],
            buckets=LATENCY_BUCKETS,
        )
        self.members: Final[Gauge] = telemetry.gauge(
            "metricgate_exporter_loadbalancing_members",
            "Members in a loadbalancing exporter's ring.",
            ["exporter"],
        )
        self.healthy: Final[Gauge] = telemetry.gauge(
            "metricgate_exporter_loadbalancing_member_healthy",
            "1 while a member's last send succeeded (or none failed yet), 0 after a retryable "
            "failure until the next success.",
            ["exporter", "member"],
        )
        self.last_success: Final[Gauge] = telemetry.gauge(
            "metricgate_exporter_loadbalancing_member_last_success_timestamp_seconds",
            "Unix time of a member's last accepted send; 0 before the first.",
            ["exporter", "member"],
        )

    def observe(self, exporter_id: str, view: MembersView) -> Callable[[], None]:
        """Report `view`'s members in the gauges; the returned function stops (on shutdown)."""

        def per_member(read: Callable[[MemberStats], float]) -> dict[tuple[str, ...], float]:
            return {(exporter_id, address): read(stats) for address, stats in view().items()}

        forget = [
            self.members.observe(lambda: {(exporter_id,): float(len(view()))}),
            self.healthy.observe(lambda: per_member(lambda stats: float(stats.healthy))),
            self.last_success.observe(lambda: per_member(lambda stats: stats.last_success)),
        ]

        def stop() -> None:
            for each in forget:
                each()

        return stop
