"""The deprecated `memory_limiter` processor: its keys, and how it maps onto
`service.memory_limiter` (one limiter per process)."""

from __future__ import annotations

import pytest

from metricgate.config import load_config_text
from metricgate.config.memory_limiter import MemoryLimiterSettings
from metricgate.errors import ConfigError
from metricgate.pipeline.service import Service
from metricgate.processors.memory_limiter import MemoryLimiterConfig
from tests.support.capture import processor_config_problems, registry_with_capture

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
            "{limit_percentage: 10, spike_limit_percentage: 10}",
            "processors.memory_limiter: expected spike_limit_percentage < limit_percentage, "
            "got 10 >= 10",
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


def config(processors: str, pipelines: str, service: str = "") -> str:
    return f"""
receivers: {{inject: {{}}}}
processors: {{{processors}}}
exporters: {{capture: {{}}}}
service:
  telemetry: {{metrics: {{address: ""}}}}
  {service}
  pipelines: {{{pipelines}}}
"""


ONE = config(
    "memory_limiter: {limit_mib: 100, spike_limit_mib: 20, check_interval: 10ms, retry_after: 3s}",
    "metrics: {receivers: [inject], processors: [memory_limiter], exporters: [capture]},"
    "metrics/b: {receivers: [inject], processors: [memory_limiter], exporters: [capture]}",
)


def test_the_processor_form_becomes_the_service_setting_with_one_warning() -> None:
    loaded = load_config_text(ONE, registry_with_capture(), {})
    assert loaded.service.memory_limiter == MemoryLimiterSettings(
        limit_mib=100, spike_limit_mib=20, check_interval=0.01, retry_after=3.0
    )
    [warning] = [w for w in loaded.warnings if "memory_limiter" in w]
    assert warning.startswith("processors.memory_limiter: the memory_limiter processor is deprec")
    assert "service.memory_limiter" in warning
    service = Service(loaded)
    assert service.memory_limiter is not None
    assert (service.memory_limiter.soft_limit, service.memory_limiter.hard_limit) == (
        80 * MIB,
        100 * MIB,
    )


def test_processors_that_disagree_are_a_config_error() -> None:
    text = config(
        "memory_limiter/a: {limit_mib: 100}, memory_limiter/b: {limit_mib: 200}",
        "metrics: {receivers: [inject], processors: [memory_limiter/a], exporters: [capture]},"
        "metrics/b: {receivers: [inject], processors: [memory_limiter/b], exporters: [capture]}",
    )
    with pytest.raises(ConfigError) as info:
        load_config_text(text, registry_with_capture(), {})
    assert (
        "processors.memory_limiter/b: settings differ from processors.memory_limiter/a; memory "
        "is limited once per process: set service.memory_limiter instead"
    ) in str(info.value)


def test_the_service_setting_wins_over_the_processor() -> None:
    text = config(
        "memory_limiter: {limit_mib: 100}",
        "metrics: {receivers: [inject], processors: [memory_limiter], exporters: [capture]}",
        "memory_limiter: {limit_mib: 300}",
    )
    loaded = load_config_text(text, registry_with_capture(), {})
    assert loaded.service.memory_limiter == MemoryLimiterSettings(limit_mib=300)
    assert any("deprecated and ignored" in w for w in loaded.warnings)


def test_service_errors_name_the_key() -> None:
    text = config(
        "",
        "metrics: {receivers: [inject], exporters: [capture]}",
        "memory_limiter: {limit_mib: 100, spike_limit_mib: 200}",
    )
    with pytest.raises(ConfigError) as info:
        load_config_text(text, registry_with_capture(), {})
    assert "service.memory_limiter: expected spike_limit_mib < limit_mib, got 200 >= 100" in str(
        info.value
    )
