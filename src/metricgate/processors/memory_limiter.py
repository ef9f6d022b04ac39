"""The `memory_limiter` processor: refuse data while the process is over its memory limits.

Every `check_interval` it reads the process RSS. Above the soft limit (`limit - spike_limit`) the
shared `MemoryGuard` makes receivers refuse new requests *before* reading their bodies, with a
retryable error carrying Retry-After (HTTP 429, gRPC RESOURCE_EXHAUSTED); batches already inside
the pipeline still flow, so nothing accepted is lost. Above the hard limit it also forces a garbage
collection. Refusal ends when RSS falls back under the soft limit.

Invariant: the limiter only ever refuses *new* data; it never drops what was accepted.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
from collections.abc import Callable

from pydantic import Field, model_validator

from metricgate.config.types import ComponentConfig, Duration
from metricgate.model import Batch
from metricgate.pipeline.component import Consumer, Processor
from metricgate.pipeline.host import Host
from metricgate.pipeline.registry import processor_factory

log = logging.getLogger(__name__)

_PAGE = os.sysconf("SC_PAGE_SIZE")
_MIB = 1024 * 1024


def process_rss() -> int:
    """Resident set size of this process in bytes (Linux /proc, cheap)."""
    with open("/proc/self/statm", "rb") as statm:
        return int(statm.read().split()[1]) * _PAGE


def total_memory() -> int:
    """Memory available to the process: the cgroup limit if set, else physical memory."""
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        with contextlib.suppress(OSError, ValueError):
            with open(path) as limit:
                value = int(limit.read().strip())
            if 0 < value < 1 << 60:
                return value
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


class MemoryLimiterConfig(ComponentConfig):
    """`processors.memory_limiter` (the Collector's keys)."""

    check_interval: Duration = 1.0
    limit_mib: int = Field(default=0, ge=0)
    """Hard limit on RSS in MiB; 0 means use `limit_percentage`."""
    spike_limit_mib: int = Field(default=0, ge=0)
    """Headroom below the hard limit; soft limit = limit - spike. 0 means 20% of the limit."""
    limit_percentage: int = Field(default=0, ge=0, le=100)
    spike_limit_percentage: int = Field(default=0, ge=0, le=100)
    retry_after: Duration = 1.0
    """Seconds clients are told to wait (Retry-After) while refused."""

    @model_validator(mode="after")
    def _check_limits(self) -> MemoryLimiterConfig:
        if not self.limit_mib and not self.limit_percentage:
            raise ValueError("expected limit_mib or limit_percentage to be set")
        if self.limit_mib and self.spike_limit_mib >= self.limit_mib:
            raise ValueError(
                f"expected spike_limit_mib < limit_mib, got {self.spike_limit_mib} >= "
                f"{self.limit_mib}"
            )
        if self.check_interval <= 0:
            raise ValueError("expected check_interval > 0")
        return self

    def limits(self, total: int) -> tuple[int, int]:
        """(soft, hard) limits in bytes."""
        if self.limit_mib:
            hard = self.limit_mib * _MIB
            spike = self.spike_limit_mib * _MIB or hard // 5
        else:
            hard = total * self.limit_percentage // 100
            spike = total * self.spike_limit_percentage // 100 or hard // 5
        return hard - spike, hard


class MemoryLimiter(Processor):
    """Watches RSS on a timer and drives the shared `MemoryGuard` (see module docstring)."""

    def __init__(
        self,
        component_id: str,
        config: MemoryLimiterConfig,
        next_consumer: Consumer,
        read_rss: Callable[[], int] = process_rss,
    ) -> None:
        super().__init__(component_id, next_consumer)
        self.config = config
        self.soft_limit, self.hard_limit = config.limits(total_memory())
        self._read_rss = read_rss
        self._host: Host | None = None
        self._task: asyncio.Task[None] | None = None
        self.rss = 0

    async def start(self, host: Host) -> None:
        self._host = host
        host.telemetry.add_gauge(
            "metricgate_memory_limiter_limit_bytes",
            "Soft and hard RSS limits of the memory limiter.",
            ["processor", "limit"],
            lambda: {
                (self.component_id, "soft"): float(self.soft_limit),
                (self.component_id, "hard"): float(self.hard_limit),
            },
        )
        host.telemetry.add_gauge(
            "metricgate_memory_limiter_refusing",
            "1 while the memory limiter makes receivers refuse data.",
            ["processor"],
            lambda: {(self.component_id,): float(host.memory.refusing)},
        )
        self.check()
        self._task = asyncio.create_task(self._watch(), name=f"{self.component_id}-watch")

    async def shutdown(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._host is not None:
            self._host.memory.set_state(False)

    async def consume(self, batch: Batch) -> None:
        if self._host is not None:
            self._host.memory.check()  # for receivers that did not check before decoding
        await self.next_consumer.consume(batch)

    def check(self) -> None:
        """Read RSS once and update the guard."""
        assert self._host is not None
        guard = self._host.memory
        self.rss = self._read_rss()
        if self.rss >= self.hard_limit:
            gc.collect()
            self.rss = self._read_rss()
        over = self.rss >= self.soft_limit
        if over != guard.refusing:
            log.warning(
                "memory over soft limit: refusing data" if over else "memory back under soft limit",
                extra={
                    "processor": self.component_id,
                    "rss_mib": self.rss // _MIB,
                    "soft_limit_mib": self.soft_limit // _MIB,
                    "hard_limit_mib": self.hard_limit // _MIB,
                },
            )
        guard.set_state(
            over,
            f"rss {self.rss // _MIB} MiB >= soft limit {self.soft_limit // _MIB} MiB",
            self.config.retry_after,
        )

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.config.check_interval)
            self.check()


FACTORY = processor_factory(
    "memory_limiter", MemoryLimiterConfig, MemoryLimiter, "refuses data over RSS limits"
)
