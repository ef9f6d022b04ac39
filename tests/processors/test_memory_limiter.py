"""The memory limiter: soft/hard limits, refusal before decoding, recovery."""

from __future__ import annotations

import asyncio

import pytest

from metricgate.config import load_config_text
from metricgate.errors import MemoryLimitError
from metricgate.pipeline.service import Service
from metricgate.processors.memory_limiter import MemoryLimiter, MemoryLimiterConfig
from tests.support.batches import number_batch
from tests.support.capture import (
    CaptureExporter,
    InjectReceiver,
    processor_config_problems,
    registry_with_capture,
)

MIB = 1024 * 1024


def test_soft_limit_is_hard_minus_spike_default_twenty_percent() -> None:
    config = MemoryLimiterConfig(limit_mib=1000)
    assert config.limits(0) == (800 * MIB, 1000 * MIB)
    config = MemoryLimiterConfig(limit_mib=1000, spike_limit_mib=100)
    assert config.limits(0) == (900 * MIB, 1000 * MIB)
    config = MemoryLimiterConfig(limit_percentage=50, spike_limit_percentage=10)
    assert config.limits(1000 * MIB) == (400 * MIB, 500 * MIB)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{}", "processors.memory_limiter: expected limit_mib or limit_percentage to be set"),
        (
            "{limit_mib: 100, spike_limit_mib: 100}",
            "processors.memory_limiter: expected spike_limit_mib < limit_mib, got 100 >= 100",
        ),
        (
            "{limit_mib: 100, check_interval: soon}",
            "processors.memory_limiter.check_interval: expected a duration like 30s or 5m, "
            "got 'soon'",
        ),
    ],
)
def test_config_errors_name_the_key(body: str, message: str) -> None:
    assert message in processor_config_problems("memory_limiter", body)


async def test_refuses_over_soft_limit_and_recovers() -> None:
    config = load_config_text(
        """
receivers: {inject: {}}
processors: {memory_limiter: {limit_mib: 100, spike_limit_mib: 20, check_interval: 10ms,
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
    ((_, limiter),) = service.processors
    assert isinstance(limiter, MemoryLimiter)
    rss = [50 * MIB]
    limiter._read_rss = lambda: rss[0]
    await service.start()
    try:
        inject = InjectReceiver.instances["inject"]
        await inject.push(number_batch({"a": 1}))
        rss[0] = 85 * MIB  # over the soft limit (80 MiB), under the hard one
        await asyncio.sleep(0.05)
        with pytest.raises(MemoryLimitError) as info:
            service.host.memory.check()  # what receivers do before reading a body
        assert info.value.retry_after == 3.0
        with pytest.raises(MemoryLimitError):
            await inject.push(number_batch({"b": 1}))
        assert (
            service.telemetry.registry.get_sample_value(
                "metricgate_memory_limiter_refusing", {"processor": "memory_limiter"}
            )
            == 1.0
        )
        rss[0] = 60 * MIB
        await asyncio.sleep(0.05)
        service.host.memory.check()
        await inject.push(number_batch({"c": 1}))
        capture = CaptureExporter.instances["capture"]
        for _ in range(100):
            if len(capture.batches) == 2:
                break
            await asyncio.sleep(0.01)
        # what was accepted arrived; the refused batch was never accepted
        assert [dict(b.metrics[0].series[0].attributes)["k"] for b in capture.batches] == ["a", "c"]
    finally:
        await service.shutdown()
    assert not service.host.memory.refusing
