"""Delivering one piece of work to a backend: attempts, backoff, remainders, and the counting.

Both sending paths of the core use it: the batch workers of `ExporterQueue` (work = a `Batch`,
attempt = `exporter.export`) and the ordered lanes (work = a `LaneRequest`, attempt =
`exporter.send`). An attempt's answer decides, for the work's points:

| the attempt                    | counted                           | then                  |
| ------------------------------ | --------------------------------- | --------------------- |
| returns n (None: all)          | n sent                            | done                  |
| raises `PermanentError`        | `delivered` sent, `refused` failed| done                  |
| raises `PartialExportError`    | `delivered` sent, `refused` failed| retry `remaining` only|
| raises anything else           | a retry                           | back off, retry       |
| retrying ends                  | failed `retries_exhausted`        | done                  |
| is cancelled (memory queue)    | failed `shutdown`                 | re-raised             |

("failed": `metricgate_exporter_send_failed_points{reason}`; refusals have `reason="permanent"`.)

With a disk queue (`durable`), a delivery stopped by shutdown raises `LeftOnDisk` and counts
nothing: the work stays queued for the next start. Failures go to the exporter's `FailureLog`.

Invariant: every point of the work is counted once, on the backend's answer (or when given up),
as sent or send-failed; never when it was merely queued.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from metricgate.errors import PartialExportError, PermanentError, RetryableError
from metricgate.model import Batch
from metricgate.pipeline.failure_log import FailureLog
from metricgate.pipeline.retry import Backoff, RetrySettings, sleep_unless
from metricgate.telemetry.metrics import SelfMetrics

W = TypeVar("W")


class LeftOnDisk(Exception):
    """Raised by a delivery stopped by shutdown: its record stays queued for the next start."""


class Delivery:
    """Sends one exporter's work with retries and counts the outcome (see module docstring)."""

    def __init__(
        self,
        exporter_id: str,
        retry: RetrySettings,
        telemetry: SelfMetrics,
        *,
        durable: bool = False,
        on_success: Callable[[], None] | None = None,
    ) -> None:
        self.exporter_id = exporter_id
        self.retry = retry
        self.durable = durable
        self.failures = FailureLog(exporter_id)
        self.stopping = asyncio.Event()
        """Set by shutdown: waits end at once and nothing is retried any more."""
        self._on_success = on_success
        self._sent = telemetry.exporter_sent.labels(exporter_id)
        self._retries = telemetry.exporter_retries.labels(exporter_id)
        self._failed = telemetry.exporter_send_failed

    def failed(self, reason: str, points: int) -> None:
        if points:
            self._failed.labels(self.exporter_id, reason).inc(points)

    async def deliver(
        self, attempt: Callable[[W], Awaitable[int | None]], work: W, points: int
    ) -> None:
        """Attempt `work` (carrying `points` data points) until it is settled (see above)."""
        backoff: Backoff | None = None
        try:
            while True:
                try:
                    delivered = await attempt(work)
                except asyncio.CancelledError:
                    raise
                except PermanentError as exc:
                    refused = points - exc.delivered if exc.refused is None else exc.refused
                    self._settle(exc.delivered)
                    self.failures.succeeded()  # the backend answered: it is up
                    self.failed("permanent", refused)
                    self.failures.refused(exc, refused)
                    return
                except Exception as exc:
                    if isinstance(exc, PartialExportError) and isinstance(work, Batch):
                        self._settle(exc.delivered)
                        self.failed("permanent", exc.refused)
                        work = exc.remaining  # type: ignore[assignment]
                        points = exc.remaining.point_count()
                    if backoff is None:
                        backoff = Backoff(self.retry)
                    retry_after = exc.retry_after if isinstance(exc, RetryableError) else 0.0
                    wait = None if self.stopping.is_set() else backoff.next_wait(retry_after)
                    if wait is None:
                        if self.durable and self.stopping.is_set():
                            raise LeftOnDisk from exc
                        self.failed("retries_exhausted", points)
                        self.failures.gave_up(exc, points)
                        return
                    self._retries.inc()
                    self.failures.retrying(exc, wait, points)
                    # Shutdown cuts the wait short for one last attempt.
                    await sleep_unless(self.stopping, wait)
                    continue
                self._settle(points if delivered is None else delivered)
                return
        except asyncio.CancelledError:
            if not self.durable:
                self.failed("shutdown", points)
            raise

    def _settle(self, delivered: int) -> None:
        if delivered:
            self._sent.inc(delivered)
            self.failures.succeeded()
            if self._on_success is not None:
                self._on_success()
