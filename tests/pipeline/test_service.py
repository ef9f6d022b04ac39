"""The pipeline service: fan-out, bounded queues, retries, isolation and shutdown."""

from __future__ import annotations

import asyncio
import time
from typing import ClassVar

import pytest

from metricgate.components import BUILTIN_FACTORIES
from metricgate.config import load_config_text
from metricgate.errors import PermanentError, QueueFullError, RetryableError
from metricgate.model import Batch
from metricgate.pipeline import Consumer, Exporter, ExporterConfig, Factory, Kind, Registry
from metricgate.pipeline.service import Service
from tests.support.batches import number_batch
from tests.support.capture import (
    CAPTURE_FACTORY,
    INJECT_FACTORY,
    CaptureExporter,
    InjectReceiver,
)
from tests.support.poll import wait_until


class FlakyConfig(ExporterConfig):
    fail_times: int = 0
    permanent: bool = False


class FlakyExporter(Exporter):
    """Fails its first `fail_times` exports (retryable, or permanent), then records batches."""

    instances: ClassVar[dict[str, FlakyExporter]] = {}

    def __init__(self, component_id: str, config: FlakyConfig) -> None:
        super().__init__(component_id)
        self.config = config
        self.attempts = 0
        self.batches: list[Batch] = []
        FlakyExporter.instances[component_id] = self

    async def export(self, batch: Batch) -> None:
        self.attempts += 1
        if self.attempts <= self.config.fail_times:
            if self.config.permanent:
                raise PermanentError("backend says no")
            raise RetryableError("backend busy", retry_after=0.01)
        self.batches.append(batch)


def _flaky(component_id: str, config: FlakyConfig, _: Consumer | None) -> FlakyExporter:
    return FlakyExporter(component_id, config)


REGISTRY = Registry(
    [
        *BUILTIN_FACTORIES,
        CAPTURE_FACTORY,
        INJECT_FACTORY,
        Factory("flaky", Kind.EXPORTER, FlakyConfig, _flaky),
    ]
)


def build(text: str) -> Service:
    config = load_config_text(text, REGISTRY, {})
    return Service(config)


async def fill_the_slow_queue(service: Service) -> None:
    """One batch in flight in `capture/slow`'s only worker (it takes 30 s), two waiting: full."""
    inject = InjectReceiver.instances["inject"]
    await inject.push(number_batch({"a": 0}))
    await wait_until(lambda: service.exporter_queues["capture/slow"].size == 0)
    for i in (1, 2):
        await inject.push(number_batch({"a": i}))


def counter_value(service: Service, name: str, **labels: str) -> float:
    value = service.telemetry.registry.get_sample_value(name, labels)
    return value or 0.0


TWO_EXPORTERS = """
receivers: {inject: {}}
exporters:
  capture/fast: {}
  capture/slow: {delay_s: 30, sending_queue: {queue_size: 2, num_consumers: 1}}
service:
  telemetry: {metrics: {address: ""}}
  pipelines:
    metrics: {receivers: [inject], exporters: [capture/fast, capture/slow]}
"""


async def test_fan_out_delivers_the_same_batch_to_every_exporter() -> None:
    service = build(TWO_EXPORTERS.replace("delay_s: 30", "delay_s: 0"))
    await service.start()
    try:
        batch = number_batch({"a": 1})
        await InjectReceiver.instances["inject"].push(batch)
        await wait_until(lambda: CaptureExporter.instances["capture/slow"].batches)
        await wait_until(lambda: CaptureExporter.instances["capture/fast"].batches)
        assert CaptureExporter.instances["capture/fast"].batches == [batch]
        assert CaptureExporter.instances["capture/slow"].batches[0] is batch
    finally:
        await service.shutdown()


async def test_stalled_exporter_refuses_with_retryable_error_and_does_not_block_its_sibling() -> (
    None
):
    service = build(TWO_EXPORTERS)
    await service.start()
    try:
        inject = InjectReceiver.instances["inject"]
        fast = CaptureExporter.instances["capture/fast"]
        await fill_the_slow_queue(service)
        with pytest.raises(QueueFullError) as info:
            await inject.push(number_batch({"a": 99}))
        assert info.value.retry_after > 0
        assert "capture/slow" in str(info.value)
        # the sibling keeps receiving everything, the refused batch included
        await wait_until(lambda: len(fast.batches) == 4)
        assert (
            counter_value(
                service, "metricgate_exporter_enqueue_failed_points_total", exporter="capture/slow"
            )
            == 1
        )
    finally:
        await service.shutdown(time.monotonic() + 0.2)


async def test_retryable_errors_are_retried_until_delivered() -> None:
    service = build(
        """
receivers: {inject: {}}
exporters:
  flaky: {fail_times: 3, retry_on_failure: {initial_interval: 10ms, max_interval: 20ms}}
service:
  telemetry: {metrics: {address: ""}}
  pipelines: {metrics: {receivers: [inject], exporters: [flaky]}}
"""
    )
    await service.start()
    try:
        await InjectReceiver.instances["inject"].push(number_batch({"a": 1, "b": 2}))
        flaky = FlakyExporter.instances["flaky"]
        await wait_until(lambda: flaky.batches)
        assert flaky.attempts == 4
        assert counter_value(service, "metricgate_exporter_retries_total", exporter="flaky") == 3
        assert (
            counter_value(service, "metricgate_exporter_sent_points_total", exporter="flaky") == 2
        )
    finally:
        await service.shutdown()


async def test_permanent_errors_drop_the_batch_once_and_count_it() -> None:
    service = build(
        """
receivers: {inject: {}}
exporters: {flaky: {fail_times: 1, permanent: true}}
service:
  telemetry: {metrics: {address: ""}}
  pipelines: {metrics: {receivers: [inject], exporters: [flaky]}}
"""
    )
    await service.start()
    try:
        inject = InjectReceiver.instances["inject"]
        await inject.push(number_batch({"a": 1}))
        await inject.push(number_batch({"b": 1}))
        flaky = FlakyExporter.instances["flaky"]
        await wait_until(lambda: flaky.batches)
        assert flaky.attempts == 2
        failed = counter_value(
            service,
            "metricgate_exporter_send_failed_points_total",
            exporter="flaky",
            reason="permanent",
        )
        assert failed == 1
    finally:
        await service.shutdown()


async def test_receiver_feeding_two_pipelines() -> None:
    service = build(
        """
receivers: {inject: {}}
exporters: {capture/a: {}, capture/b: {}}
service:
  telemetry: {metrics: {address: ""}}
  pipelines:
    metrics/a: {receivers: [inject], exporters: [capture/a]}
    metrics/b: {receivers: [inject], exporters: [capture/b, capture/a]}
"""
    )
    await service.start()
    try:
        await InjectReceiver.instances["inject"].push(number_batch({"a": 1}))
        a, b = CaptureExporter.instances["capture/a"], CaptureExporter.instances["capture/b"]
        await wait_until(lambda: len(a.batches) == 2 and len(b.batches) == 1)
        # one exporter instance shared by both pipelines
        assert len(service.exporter_queues) == 2
    finally:
        await service.shutdown()


async def test_shutdown_drains_queued_batches_before_stopping() -> None:
    service = build(
        """
receivers: {inject: {}}
exporters: {capture: {delay_s: 0.02, sending_queue: {num_consumers: 1}}}
service:
  telemetry: {metrics: {address: ""}}
  pipelines: {metrics: {receivers: [inject], exporters: [capture]}}
"""
    )
    await service.start()
    inject = InjectReceiver.instances["inject"]
    for i in range(10):
        await inject.push(number_batch({"a": i}))
    await service.shutdown(time.monotonic() + 5)
    assert len(CaptureExporter.instances["capture"].batches) == 10


async def test_shutdown_deadline_bounds_the_drain_and_counts_the_loss() -> None:
    service = build(
        """
receivers: {inject: {}}
exporters: {capture: {delay_s: 10, sending_queue: {num_consumers: 1}}}
service:
  telemetry: {metrics: {address: ""}}
  pipelines: {metrics: {receivers: [inject], exporters: [capture]}}
"""
    )
    await service.start()
    inject = InjectReceiver.instances["inject"]
    for i in range(3):
        await inject.push(number_batch({"a": i}))
    started = time.monotonic()
    await service.shutdown(time.monotonic() + 0.3)
    assert time.monotonic() - started < 2
    lost = counter_value(
        service,
        "metricgate_exporter_send_failed_points_total",
        exporter="capture",
        reason="shutdown",
    )
    assert lost == 3  # one cancelled in flight, two still queued: each counted once


async def test_queue_gauges_report_size_and_capacity() -> None:
    service = build(TWO_EXPORTERS)
    await service.start()
    try:
        await fill_the_slow_queue(service)
        registry = service.telemetry.registry
        assert (
            registry.get_sample_value(
                "metricgate_exporter_queue_capacity", {"exporter": "capture/slow"}
            )
            == 2
        )
        assert (
            registry.get_sample_value(
                "metricgate_exporter_queue_size", {"exporter": "capture/slow"}
            )
            == 2
        )
    finally:
        await service.shutdown(time.monotonic() + 0.2)


async def test_shutdown_ends_an_exporter_waiting_to_retry_within_the_deadline() -> None:
    # Setting `stopping` and cancelling the worker in the same loop iteration must not lose the
    # cancellation (asyncio.wait_for swallows it on Python 3.11), or shutdown waits forever.
    service = build(
        """
receivers: {inject: {}}
exporters:
  flaky:
    fail_times: 1000000
    sending_queue: {num_consumers: 1}
    retry_on_failure: {initial_interval: 0.05, max_interval: 0.05}
service:
  telemetry: {metrics: {address: ""}}
  pipelines: {metrics: {receivers: [inject], exporters: [flaky]}}
"""
    )
    await service.start()
    await InjectReceiver.instances["inject"].push(number_batch({"a": 1}))
    flaky = FlakyExporter.instances["flaky"]
    await wait_until(lambda: flaky.attempts >= 2)
    started = time.monotonic()
    await asyncio.wait_for(service.shutdown(time.monotonic() + 0.2), 5)
    assert time.monotonic() - started < 2
