"""Remote-write sending against a controllable local receiver: retries, drops, order, shards.

The exporter runs behind the sending core (`ExporterQueue` with its ordered lanes), as in a
gateway; `Sending.export` enqueues a batch the way a receiver does.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from metricgate.exporters.prometheus_remote_write import (
    RemoteWriteExporter,
    RemoteWriteExporterConfig,
)
from metricgate.model import Batch, MetricKind
from metricgate.pipeline.host import Host
from metricgate.pipeline.lanes import Lanes
from metricgate.pipeline.queue import ExporterQueue
from metricgate.telemetry import SelfMetrics
from tests.exporters.test_remote_write_support import Sample, decode_compressed, samples_of
from tests.support.batches import number_batch
from tests.support.ports import free_port

NS = 1_700_000_000_000_000_000
Answer = Callable[[int], web.Response | None]


@dataclass
class Receiver:
    """Answers each request with `answer(attempt)` (None: 204) and records what it saw."""

    answer: Answer = lambda _: None
    delay: Callable[[], float] = lambda: 0.0
    accepted: list[Sample] = field(default_factory=list)
    attempts: list[tuple[float, list[Sample]]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        samples = samples_of(decode_compressed(body))
        self.headers.append(dict(request.headers))
        self.attempts.append((time.monotonic(), samples))
        await asyncio.sleep(self.delay())
        response = self.answer(len(self.attempts))
        if response is None:
            self.accepted.extend(samples)
            return web.Response(status=204)
        return response


@asynccontextmanager
async def serve(receiver: Receiver, port: int = 0) -> AsyncIterator[int]:
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/api/v1/write", receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield int(runner.addresses[0][1])
    finally:
        await runner.cleanup()


@dataclass
class Sending:
    """A remote-write exporter behind its sending queue, as the gateway runs it."""

    queue: ExporterQueue
    exporter: RemoteWriteExporter

    async def export(self, batch: Batch) -> None:
        await self.queue.consume(batch)

    @property
    def lanes(self) -> Lanes:
        assert self.queue.lanes is not None
        return self.queue.lanes


@asynccontextmanager
async def exporter(port: int, **overrides: Any) -> AsyncIterator[tuple[Sending, Host]]:
    settings: dict[str, Any] = {
        "endpoint": f"http://127.0.0.1:{port}/api/v1/write",
        "flush_interval": 0.01,
        "target_info": {"enabled": False},
        "headers": {"X-Scope-OrgID": "tenant-1"},
    }
    settings.update(overrides)
    host = Host(SelfMetrics())
    config = RemoteWriteExporterConfig(**settings)
    exp = RemoteWriteExporter("prometheus_remote_write", config)
    queue = ExporterQueue(exp, config.sending_queue, config.retry_on_failure)
    await queue.start(host)
    try:
        yield Sending(queue, exp), host
    finally:
        await queue.shutdown(time.monotonic() + 2)


def metric_value(host: Host, name: str, **labels: str) -> float:
    value = host.telemetry.registry.get_sample_value(
        name, {"exporter": "prometheus_remote_write", **labels}
    )
    return value or 0.0


async def until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


def gauges(n: int, timestamp: int = NS) -> Any:
    return number_batch(
        {f"s{i}": float(i) for i in range(n)}, name="g", kind=MetricKind.GAUGE, timestamp=timestamp
    )


async def test_headers_and_success() -> None:
    receiver = Receiver()
    async with serve(receiver) as port, exporter(port) as (exp, host):
        await exp.export(gauges(10))
        await until(lambda: len(receiver.accepted) == 10)
        await until(lambda: metric_value(host, "metricgate_exporter_sent_points_total") == 10)
        assert exp.exporter.last_success > 0
    headers = receiver.headers[0]
    assert headers["Content-Encoding"] == "snappy"
    assert headers["Content-Type"] == "application/x-protobuf"
    assert headers["X-Prometheus-Remote-Write-Version"] == "0.1.0"
    assert headers["User-Agent"].startswith("metricgate/")
    assert headers["X-Scope-OrgID"] == "tenant-1"


async def test_500_is_retried_and_nothing_is_sent_twice() -> None:
    receiver = Receiver(answer=lambda n: web.Response(status=500, text="oops") if n == 1 else None)
    async with serve(receiver) as port, exporter(port) as (exp, host):
        await exp.export(gauges(50))
        await until(lambda: len(receiver.accepted) == 50)
        await exp.export(gauges(50, NS + 10**9))
        await until(lambda: len(receiver.accepted) == 100)
        await asyncio.sleep(0.2)
        assert len(receiver.accepted) == len(set(receiver.accepted)) == 100
        assert len(receiver.attempts) == 3
        assert metric_value(host, "metricgate_exporter_retries_total") == 1
        assert metric_value(host, "metricgate_exporter_sent_points_total") == 100


async def test_400_is_dropped_counted_and_never_resent() -> None:
    receiver = Receiver(
        answer=lambda n: web.Response(status=400, text="out of order sample") if n == 1 else None
    )
    async with serve(receiver) as port, exporter(port) as (exp, host):
        await exp.export(gauges(20))
        await until(
            lambda: (
                metric_value(
                    host, "metricgate_exporter_send_failed_points_total", reason="permanent"
                )
                == 20
            )
        )
        await asyncio.sleep(0.3)
        assert len(receiver.attempts) == 1 and not receiver.accepted
        await exp.export(gauges(5, NS + 10**9))
        await until(lambda: len(receiver.accepted) == 5)


async def test_429_waits_at_least_retry_after() -> None:
    receiver = Receiver(
        answer=lambda n: web.Response(status=429, headers={"Retry-After": "1"}) if n == 1 else None
    )
    async with serve(receiver) as port, exporter(port) as (exp, _):
        await exp.export(gauges(3))
        await until(lambda: len(receiver.accepted) == 3)
    assert receiver.attempts[1][0] - receiver.attempts[0][0] >= 0.99


async def test_connection_refused_then_back_loses_nothing() -> None:
    port = free_port()
    receiver = Receiver()
    async with exporter(port) as (exp, host):
        for i in range(5):
            await exp.export(gauges(100, NS + i * 10**9))
        await until(lambda: metric_value(host, "metricgate_exporter_retries_total") > 0)
        async with serve(receiver, port):
            await until(lambda: len(receiver.accepted) == 500, timeout=20)
            await until(lambda: metric_value(host, "metricgate_exporter_sent_points_total") == 500)
    assert len(set(receiver.accepted)) == 500


@pytest.mark.parametrize("shards", [{"min": 4, "max": 4}, {"min": 1, "max": 8, "capacity": 200}])
async def test_per_series_order_holds_across_shards(shards: dict[str, int]) -> None:
    rng = random.Random(7)
    receiver = Receiver(delay=lambda: rng.uniform(0, 0.02))
    rounds, series = 10, 1000
    async with (
        serve(receiver) as port,
        exporter(port, shards=shards, max_samples_per_send=200) as (exp, _),
    ):
        for r in range(rounds):
            await exp.export(gauges(series, NS + r * 10**9))
        await until(lambda: len(receiver.accepted) == rounds * series, timeout=30)
        grown = len(exp.lanes)
    seen: dict[tuple[tuple[str, str], ...], list[int]] = {}
    for labels, _, ts in receiver.accepted:
        seen.setdefault(labels, []).append(ts)
    assert len(seen) == series
    assert all(stamps == sorted(stamps) and len(stamps) == rounds for stamps in seen.values())
    if shards["min"] == 1:
        assert grown > 1, "shards should grow under back-pressure"


async def test_shutdown_with_dead_backend_counts_loss() -> None:
    port = free_port()
    async with exporter(port, timeout=0.3) as (exp, host):
        await exp.export(gauges(10))
        await asyncio.sleep(0.2)
    failed = metric_value(
        host, "metricgate_exporter_send_failed_points_total", reason="retries_exhausted"
    ) + metric_value(host, "metricgate_exporter_send_failed_points_total", reason="shutdown")
    assert failed == 10
    assert metric_value(host, "metricgate_exporter_sent_points_total") == 0


def test_config_refuses_protocol_headers_and_two_credentials() -> None:
    with pytest.raises(ValueError, match="set by the protocol"):
        RemoteWriteExporterConfig(endpoint="http://x/api/v1/write", headers={"content-type": "x"})
    with pytest.raises(ValueError, match="at most one"):
        RemoteWriteExporterConfig.model_validate(
            {
                "endpoint": "http://x/api/v1/write",
                "bearer_token": "t",
                "basic_auth": {"username": "u"},
            }
        )
    with pytest.raises(ValueError, match="num_consumers"):
        RemoteWriteExporterConfig.model_validate(
            {"endpoint": "http://x/api/v1/write", "sending_queue": {"num_consumers": 2}}
        )
    with pytest.raises(ValueError, match="http"):
        RemoteWriteExporterConfig(endpoint="localhost:9090")
    config = RemoteWriteExporterConfig(endpoint="http://x/api/v1/write")
    assert config.retry_on_failure.initial_interval == 0.05
    assert config.retry_on_failure.max_elapsed_time == 0
    assert config.sending_queue.num_consumers == 1


async def test_credentials_are_sent(tmp_path: Any) -> None:
    token = tmp_path / "token"
    token.write_text("first\n")
    receiver = Receiver()
    async with serve(receiver) as port:
        async with exporter(port, bearer_token_file=str(token)) as (exp, _):
            await exp.export(gauges(1))
            await until(lambda: len(receiver.accepted) == 1)
            token.write_text("rotated\n")
            await exp.export(gauges(1, NS + 10**9))
            await until(lambda: len(receiver.accepted) == 2)
        async with exporter(port, basic_auth={"username": "u", "password": "p"}) as (exp, _):
            await exp.export(gauges(1, NS + 2 * 10**9))
            await until(lambda: len(receiver.accepted) == 3)
    assert [h["Authorization"] for h in receiver.headers] == [
        "Bearer first",
        "Bearer rotated",
        "Basic dTpw",
    ]


async def test_shards_shrink_when_idle(monkeypatch: pytest.MonkeyPatch) -> None:
    from metricgate.pipeline import lanes as module

    receiver = Receiver()
    async with serve(receiver) as port, exporter(port, shards={"min": 1, "max": 4}) as (exp, _):
        await exp.lanes.resize(4)
        monkeypatch.setattr(module, "SHRINK_AFTER_IDLE_S", 0.0)
        await exp.export(gauges(10))
        await until(lambda: len(exp.lanes) == 2)
        await exp.export(gauges(10, NS + 10**9))
        await until(lambda: len(exp.lanes) == 1)
        await until(lambda: len(receiver.accepted) == 20)
    stamps: dict[Any, list[int]] = {}
    for labels, _, ts in receiver.accepted:
        stamps.setdefault(labels, []).append(ts)
    assert all(s == sorted(s) for s in stamps.values())
