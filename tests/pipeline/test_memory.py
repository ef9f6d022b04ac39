"""The process-wide memory limiter: what it measures, when it releases caches, when it refuses."""

from __future__ import annotations

import pytest

from metricgate.config import load_config_text
from metricgate.config.memory_limiter import MemoryLimiterSettings
from metricgate.errors import MemoryLimitError
from metricgate.model.caches import BoundedTable
from metricgate.pipeline.memory import MemoryGuard, MemoryLimiter
from metricgate.pipeline.service import Service
from tests.support.batches import number_batch
from tests.support.capture import CaptureExporter, InjectReceiver, registry_with_capture
from tests.support.poll import wait_until

MIB = 1024 * 1024
# soft 80 MiB, resume 75 MiB (soft - spike / 4), hard 100 MiB
SETTINGS = MemoryLimiterSettings(limit_mib=100, spike_limit_mib=20, retry_after=3.0)


class Memory:
    """Measurements a test sets; counts how often the free figure was asked for."""

    def __init__(self, rss_mib: float, free_mib: float = 0.0) -> None:
        self.rss = int(rss_mib * MIB)
        self.free = int(free_mib * MIB)
        self.free_reads = 0
        self.now = 0.0

    def read_free(self) -> int:
        self.free_reads += 1
        return self.free


def limiter(memory: Memory, settings: MemoryLimiterSettings = SETTINGS) -> MemoryLimiter:
    return MemoryLimiter(
        settings,
        MemoryGuard(),
        read_rss=lambda: memory.rss,
        read_free=memory.read_free,
        total=0,
        clock=lambda: memory.now,
    )


def test_limits_and_the_resume_limit_between_them() -> None:
    found = limiter(Memory(0))
    assert (found.resume_limit, found.soft_limit, found.hard_limit) == (
        75 * MIB,
        80 * MIB,
        100 * MIB,
    )


def test_refusal_starts_at_the_soft_limit_and_ends_under_the_resume_limit() -> None:
    memory = Memory(79)
    found = limiter(memory)
    found.check()
    assert not found.guard.refusing
    memory.rss = 85 * MIB
    found.check()
    assert found.guard.refusing
    with pytest.raises(MemoryLimitError) as info:
        found.guard.check()
    assert info.value.retry_after == 3.0
    assert "usage 85 MiB >= limit 80 MiB" in str(info.value)
    memory.rss = 78 * MIB  # under soft, over resume: still refusing, no flapping
    found.check()
    assert found.guard.refusing
    memory.rss = 74 * MIB
    found.check()
    assert not found.guard.refusing


def test_what_a_release_leaves_under_the_soft_limit_ends_refusal() -> None:
    memory = Memory(85)
    found = limiter(memory)
    found.check()
    assert found.guard.refusing and found.releases == 1
    memory.rss = 78 * MIB  # live data between the resume and the soft limit
    memory.now = 5.0
    found.check()
    assert found.guard.refusing and found.releases == 1  # no release due yet: hysteresis
    memory.now = 10.0
    found.check()
    assert found.releases == 2 and not found.guard.refusing  # released, still 78: it is live


def test_usage_is_rss_less_what_the_allocator_holds_free_read_only_when_over() -> None:
    memory = Memory(70, free_mib=30)
    found = limiter(memory)
    found.check()
    assert memory.free_reads == 0 and found.usage == 70 * MIB  # under the limit: RSS is enough
    memory.rss = 95 * MIB
    found.check()
    assert memory.free_reads == 1 and found.usage == 65 * MIB
    assert not found.guard.refusing  # freed memory is reused before the process grows


def test_release_empties_the_caches_before_deciding() -> None:
    table: BoundedTable[int, int] = BoundedTable(100)
    for i in range(10):
        table.put(i, i)
    memory = Memory(90)
    found = limiter(memory)
    found.read_rss = lambda: memory.rss if len(table) else 60 * MIB
    found.check()
    assert len(table) == 0 and found.releases == 1
    assert not found.guard.refusing and found.usage == 60 * MIB


def test_releases_are_spaced_by_the_gc_intervals() -> None:
    memory = Memory(85)
    settings = SETTINGS.model_copy(
        update={"min_gc_interval_when_soft_limited": 10.0, "min_gc_interval_when_hard_limited": 1.0}
    )
    found = limiter(memory, settings)
    found.check()
    memory.now = 9.0
    found.check()
    assert found.releases == 1 and found.guard.refusing
    memory.now = 10.0
    found.check()
    assert found.releases == 2
    memory.rss = 120 * MIB  # over the hard limit: the shorter interval
    memory.now = 11.0
    found.check()
    assert found.releases == 3


async def test_the_service_limiter_guards_receivers_and_the_processor() -> None:
    config = load_config_text(
        """
receivers: {inject: {}}
processors: {memory_limiter: {limit_mib: 100, spike_limit_mib: 20, check_interval: 1h,
  retry_after: 3s}}
exporters: {capture: {}}
service:
  telemetry: {metrics: {address: ""}}
  pipelines: {metrics: {receivers: [inject], processors: [memory_limiter], exporters: [capture]}}
""",
        registry_with_capture(),
        {},
    )
    service = Service(config)
    assert service.memory_limiter is not None
    memory = Memory(50)
    service.memory_limiter.read_rss = lambda: memory.rss
    service.memory_limiter.read_free = memory.read_free
    await service.start()
    try:
        inject = InjectReceiver.instances["inject"]
        await inject.push(number_batch({"a": 1}))
        memory.rss = 85 * MIB
        service.memory_limiter.check()
        with pytest.raises(MemoryLimitError):
            service.host.memory.check()  # what receivers do before reading a body
        with pytest.raises(MemoryLimitError):
            await inject.push(number_batch({"b": 1}))  # the processor checks too
        registry = service.telemetry.registry
        assert registry.get_sample_value("metricgate_memory_limiter_refusing") == 1.0
        assert registry.get_sample_value("metricgate_memory_limiter_usage_bytes") == 85 * MIB
        assert registry.get_sample_value(
            "metricgate_memory_limiter_limit_bytes", {"limit": "resume"}
        ) == (75 * MIB)
        memory.rss = 60 * MIB
        service.memory_limiter.check()
        assert registry.get_sample_value("metricgate_memory_limiter_refusing") == 0.0
        await inject.push(number_batch({"c": 1}))
        capture = CaptureExporter.instances["capture"]
        await wait_until(lambda: len(capture.batches) == 2)
        # what was accepted arrived; the refused batch was never accepted
        assert [dict(b.metrics[0].series[0].attributes)["k"] for b in capture.batches] == ["a", "c"]
    finally:
        await service.shutdown()
    assert not service.host.memory.refusing
