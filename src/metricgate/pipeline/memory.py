"""Admission control: the process-wide memory limiter, and the check every receiver makes.

Receivers call `host.memory.check()` (`MemoryGuard`) *before* reading or decoding a request body,
so a process over its soft memory limit refuses work without allocating for it (the Collector
decodes first and refuses later, core #8632). With no limiter configured `check()` is a single
attribute test.

`MemoryLimiter` (one per process, from `service.memory_limiter`; the deprecated `memory_limiter`
processor is mapped onto it when the config is loaded) measures every `check_interval`:

1. usage: RSS, or, when RSS is over the limit in force, RSS minus the memory Python's allocator
   holds free for reuse (`process_memory`): freed memory stays in the process's RSS, so RSS alone
   would keep a gateway refusing long after the data that filled it is gone;
2. usage at or over the limit in force: *release*, at most every
   `min_gc_interval_when_soft_limited` (`..._hard_limited` over the hard limit): empty every
   registered cache (`metricgate.model.caches`: decoders, interner, translations, relabel
   results, all rebuilt from the traffic; and the cardinality limiter's refused series), collect
   garbage, hand free pages back to the system, then measure again;
3. refuse while usage is still at or over the limit in force. That is the soft limit
   (`limit - spike_limit`) while accepting, and the *resume limit* (`soft - spike_limit / 4`)
   while refusing, so a gateway whose memory comes and goes at its limit does not flip at every
   check; but when usage right after a release is under the soft limit, refusal ends even above
   the resume limit: what is left then is live data (a cardinality limiter's series, say) that no
   amount of waiting frees, and refusing on account of it would lock clients out for good.

Invariant: the limiter only ever refuses *new* data; it never drops what was accepted, and
releasing caches changes only what later requests cost.
"""

from __future__ import annotations

import gc
import logging
import math
import time
from collections.abc import Callable

from metricgate.config.memory_limiter import MIB, MemoryLimiterSettings
from metricgate.errors import MemoryLimitError
from metricgate.model.caches import cached_entries, release_caches
from metricgate.periodic import Periodic
from metricgate.pipeline.process_memory import (
    allocator_free,
    process_rss,
    total_memory,
    trim_allocator,
)
from metricgate.telemetry.metrics import SelfMetrics

log = logging.getLogger(__name__)


class MemoryGuard:
    """Process-wide flag: are we over the soft limit, and for how long to back off."""

    def __init__(self) -> None:
        self.refusing = False
        self.retry_after = 1.0
        self.reason = ""

    def set_state(self, refusing: bool, reason: str = "", retry_after: float = 1.0) -> None:
        self.refusing = refusing
        self.reason = reason
        self.retry_after = retry_after

    def check(self) -> None:
        """Raise `MemoryLimitError` (retryable, with retry_after) while over the soft limit."""
        if self.refusing:
            raise MemoryLimitError(
                f"memory limit reached ({self.reason}); retry later", retry_after=self.retry_after
            )


class MemoryLimiter:
    """Measures memory on a timer, releases caches and drives the `MemoryGuard` (see module
    docstring). The measuring functions and the clock can be replaced for tests."""

    def __init__(
        self,
        settings: MemoryLimiterSettings,
        guard: MemoryGuard,
        *,
        read_rss: Callable[[], int] = process_rss,
        read_free: Callable[[], int] = allocator_free,
        total: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.guard = guard
        self.soft_limit, self.hard_limit = settings.limits(
            total_memory() if total is None else total
        )
        self.resume_limit = self.soft_limit - (self.hard_limit - self.soft_limit) // 4
        self.read_rss = read_rss
        self.read_free = read_free
        self._clock = clock
        self.rss = 0
        self.usage = 0
        """What the last check measured (see the module docstring), in bytes."""
        self.releases = 0
        self._last_release = -math.inf
        self._watch = Periodic("memory limiter check", settings.check_interval, self.check, log)

    def register_telemetry(self, telemetry: SelfMetrics) -> None:
        telemetry.gauge(
            "metricgate_memory_limiter_limit_bytes",
            "Limits of the memory limiter: soft (refusal starts), resume (refusal ends), hard.",
            ["limit"],
        ).observe(
            lambda: {
                ("soft",): float(self.soft_limit),
                ("resume",): float(self.resume_limit),
                ("hard",): float(self.hard_limit),
            }
        )
        telemetry.gauge(
            "metricgate_memory_limiter_usage_bytes",
            "Memory use the limiter compares with its limits: RSS less what the allocator holds "
            "free for reuse.",
            [],
        ).observe(lambda: {(): float(self.usage)})
        telemetry.gauge(
            "metricgate_memory_limiter_refusing",
            "1 while the memory limiter makes receivers refuse data.",
            [],
        ).observe(lambda: {(): float(self.guard.refusing)})
        telemetry.gauge(
            "metricgate_memory_limiter_releases",
            "Times the memory limiter emptied the caches and collected garbage.",
            [],
        ).observe(lambda: {(): float(self.releases)})
        telemetry.gauge(
            "metricgate_memory_limiter_cached_entries",
            "Entries in the caches the memory limiter empties when it releases memory.",
            [],
        ).observe(lambda: {(): float(cached_entries())})

    async def start(self) -> None:
        self.check()
        self._watch.start()

    async def shutdown(self) -> None:
        await self._watch.stop()
        self.guard.set_state(False)

    def limit_in_force(self) -> int:
        return self.resume_limit if self.guard.refusing else self.soft_limit

    def measure(self) -> int:
        """Read usage once (cheap under the limit in force: RSS only)."""
        rss = self.rss = self.read_rss()
        usage = rss if rss < self.limit_in_force() else max(0, rss - self.read_free())
        self.usage = usage
        return usage

    def check(self) -> None:
        """Measure, release if due, and update the guard."""
        usage = self.measure()
        limit = self.limit_in_force()
        if usage >= limit:
            hard = usage >= self.hard_limit
            settings = self.settings
            interval = (
                settings.min_gc_interval_when_hard_limited
                if hard
                else settings.min_gc_interval_when_soft_limited
            )
            if self._clock() - self._last_release >= interval:
                self.release()
                usage = self.measure()
                # What a release leaves is live: under the soft limit, waiting frees nothing.
                limit = self.soft_limit
        refusing = usage >= limit
        guard = self.guard
        if refusing != guard.refusing:
            log.warning(
                "memory over soft limit: refusing data"
                if refusing
                else "memory back under the resume limit: accepting data",
                extra={
                    "usage_mib": usage // MIB,
                    "rss_mib": self.rss // MIB,
                    "soft_limit_mib": self.soft_limit // MIB,
                    "resume_limit_mib": self.resume_limit // MIB,
                    "hard_limit_mib": self.hard_limit // MIB,
                },
            )
        guard.set_state(
            refusing,
            f"usage {usage // MIB} MiB >= limit {limit // MIB} MiB",
            self.settings.retry_after,
        )

    def release(self) -> None:
        """Empty the caches, collect garbage, give free pages back (the module docstring's 2.)."""
        before = self.usage
        self._last_release = self._clock()
        entries = release_caches()
        gc.collect()
        trim_allocator()
        self.releases += 1
        log.info(
            "memory limiter released caches",
            extra={
                "cache_entries": entries,
                "usage_mib_before": before // MIB,
                "rss_mib_after": self.read_rss() // MIB,
            },
        )
