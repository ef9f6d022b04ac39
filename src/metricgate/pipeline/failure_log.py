"""Failure logging that does not flood: one exporter's failures, summarised while they last.

A backend that is down fails every attempt of every worker or lane: logging each one buried the
log (ten disk shards wrote ~33 warnings in ten seconds for eight points). Instead, per exporter:

- the first failed attempt of an episode: one WARNING with the error;
- while it lasts, at most one WARNING summary every `interval` (failed attempts, points given
  up on, the last error, how long it has lasted); the first points given up on in an episode
  get their own ERROR line, since that is data lost;
- the first success after it: one INFO line with the episode's totals.

Permanent refusals (the backend answered, and said the data is bad) are not an outage: the first
is logged at ERROR with the backend's message, then at most one more per `interval`, saying how
many were refused since.

Invariant: `succeeded()` costs one attribute test while nothing fails; it runs per request.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Final

from metricgate.errors import ConsumeError, describe

log = logging.getLogger("metricgate.exporters")

SUMMARY_INTERVAL_S: Final = 60.0
"""How often a lasting failure (or a stream of refusals) is summarised in the log."""


def _trace(error: BaseException) -> BaseException | None:
    """The traceback to log: only for errors no exporter raised on purpose (bugs)."""
    return None if isinstance(error, ConsumeError) else error


class FailureLog:
    """One exporter's failure episodes and refusals (see module docstring)."""

    __slots__ = (
        "_clock",
        "_failed",
        "_failed_total",
        "_last_error",
        "_lost",
        "_lost_total",
        "_refused",
        "_refused_at",
        "_refused_points",
        "_summary_at",
        "exporter_id",
        "failing_since",
        "interval",
    )

    def __init__(
        self,
        exporter_id: str,
        interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.exporter_id = exporter_id
        self.interval = SUMMARY_INTERVAL_S if interval is None else interval
        self._clock = clock
        self.failing_since: float | None = None
        """Monotonic time the current episode began; None while deliveries succeed."""
        self._failed = self._failed_total = 0
        self._lost = self._lost_total = 0
        self._last_error = ""
        self._summary_at = 0.0
        self._refused = self._refused_points = 0
        self._refused_at: float | None = None

    def retrying(self, error: BaseException, wait: float, points: int) -> None:
        """An attempt failed and will be retried in `wait` seconds."""
        if self._start(error):
            log.warning(
                "exporter failing; will retry",
                extra={
                    "exporter": self.exporter_id,
                    "retry_in_s": round(wait, 3),
                    "points": points,
                    "error": describe(error),
                },
                exc_info=_trace(error),
            )
        self._maybe_summarise()

    def gave_up(self, error: BaseException, points: int) -> None:
        """An attempt failed and retrying ended: `points` are lost."""
        first_loss = self._lost_total == 0
        started = self._start(error)
        self._lost += points
        self._lost_total += points
        if started or first_loss:
            log.error(
                "exporter failed; giving up, points lost",
                extra={"exporter": self.exporter_id, "points": points, "error": describe(error)},
                exc_info=_trace(error),
            )
            return
        self._maybe_summarise()

    def refused(self, error: BaseException, points: int) -> None:
        """The backend refused `points` for good (a permanent error)."""
        now = self._clock()
        self._refused += 1
        self._refused_points += points
        if self._refused_at is not None and now - self._refused_at < self.interval:
            return
        log.error(
            "export failed permanently; dropped",
            extra={
                "exporter": self.exporter_id,
                "points": self._refused_points,
                "refusals": self._refused,
                "error": describe(error),
            },
        )
        self._refused_at = now
        self._refused = self._refused_points = 0

    def succeeded(self) -> None:
        """A delivery went through: ends an episode (one INFO line)."""
        if self.failing_since is None:
            return
        log.info(
            "exporter recovered",
            extra={
                "exporter": self.exporter_id,
                "failed_for_s": round(self._clock() - self.failing_since, 3),
                "failed_attempts": self._failed_total,
                "points_lost": self._lost_total,
                "last_error": self._last_error,
            },
        )
        self.failing_since = None
        self._failed = self._failed_total = self._lost = self._lost_total = 0

    def _start(self, error: BaseException) -> bool:
        """Count one failed attempt; True if it begins an episode."""
        self._failed += 1
        self._failed_total += 1
        self._last_error = describe(error)
        if self.failing_since is not None:
            return False
        self.failing_since = self._summary_at = self._clock()
        self._failed = 0
        return True

    def _maybe_summarise(self) -> None:
        now = self._clock()
        if self.failing_since is None or now - self._summary_at < self.interval:
            return
        level = logging.ERROR if self._lost else logging.WARNING
        log.log(
            level,
            "exporter still failing",
            extra={
                "exporter": self.exporter_id,
                "failing_for_s": round(now - self.failing_since, 3),
                "failed_attempts": self._failed,
                "points_lost": self._lost,
                "last_error": self._last_error,
            },
        )
        self._summary_at = now
        self._failed = self._lost = 0
