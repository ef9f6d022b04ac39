"""Remote-write sending against a controllable local receiver: retries, drops, order, shards.

The exporter runs behind the sending core (`ExporterQueue` with its ordered lanes), as in a
gateway; `Sending.export` enqueues a batch the way a receiver does. A batch sent after another
reaches the receiver after every attempt of the first (one lane per series, in order), which is
how these tests show that something was *not* sent again without sleeping and looking.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest
from aiohttp import web

from metricgate.exporters.prometheus_remote_write import RemoteWriteExporterConfig
from metricgate.pipeline.lane import LaneSettings, MemoryLane
from tests.support.poll import wait_until
from tests.support.ports import free_port
from tests.support.remote_write import NS, Receiver, exporter, gauges, metric_value, serve


async def test_headers_and_success() -> None:
    receiver = Receiver()
    async with serve(receiver) as port, exporter(port) as (exp, host):
        await exp.export(gauges(10))
        await wait_until(lambda: len(receiver.accepted) == 10)
        await wait_until(lambda: metric_value(host, "metricgate_exporter_sent_points_total") == 10)
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
        await wait_until(lambda: len(receiver.accepted) == 50)
        await exp.export(gauges(50, NS + 10**9))
        await exp.export(gauges(50, NS + 2 * 10**9))  # a resend would arrive before these
        await wait_until(lambda: len(receiver.accepted) == 150)
        assert len(receiver.accepted) == len(set(receiver.accepted)) == 150
        assert receiver.attempts[1][1] == receiver.attempts[0][1]  # the refused request, again
        assert sum(len(samples) for _, samples in receiver.attempts) == 50 + 150
        assert metric_value(host, "metricgate_exporter_retries_total") == 1
        assert metric_value(host, "metricgate_exporter_sent_points_total") == 150


async def test_400_is_dropped_counted_and_never_resent() -> None:
    receiver = Receiver(
        answer=lambda n: web.Response(status=400, text="out of order sample") if n == 1 else None
    )
    async with serve(receiver) as port, exporter(port) as (exp, host):
        await exp.export(gauges(20))
        await wait_until(
            lambda: (
                metric_value(
                    host, "metricgate_exporter_send_failed_points_total", reason="permanent"
                )
                == 20
            )
        )
        await exp.export(gauges(5, NS + 10**9))  # a resend of the 20 would arrive before these
        await wait_until(lambda: len(receiver.accepted) == 5)
        assert len(receiver.attempts) == 2
        assert {ts for _, _, ts in receiver.accepted} == {(NS + 10**9) // 10**6}


async def test_429_waits_at_least_retry_after() -> None:
    receiver = Receiver(
        answer=lambda n: web.Response(status=429, headers={"Retry-After": "1"}) if n == 1 else None
    )
    async with serve(receiver) as port, exporter(port) as (exp, _):
        await exp.export(gauges(3))
        await wait_until(lambda: len(receiver.accepted) == 3)
    assert receiver.attempts[1][0] - receiver.attempts[0][0] >= 0.99


async def test_connection_refused_then_back_loses_nothing() -> None:
    port = free_port()
    receiver = Receiver()
    async with exporter(port) as (exp, host):
        for i in range(5):
            await exp.export(gauges(100, NS + i * 10**9))
        await wait_until(lambda: metric_value(host, "metricgate_exporter_retries_total") > 0)
        async with serve(receiver, port):
            await wait_until(lambda: len(receiver.accepted) == 500, timeout=20)
            await wait_until(
                lambda: metric_value(host, "metricgate_exporter_sent_points_total") == 500
            )
    assert len(set(receiver.accepted)) == 500


@pytest.mark.parametrize("shards", [{"min": 4, "max": 4}, {"min": 1, "max": 8, "capacity": 200}])
async def test_per_series_order_holds_across_shards(
    shards: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    from metricgate.pipeline import lanes as module

    monkeypatch.setattr(module, "RESHARD_INTERVAL_S", 0.1)
    rng = random.Random(7)
    receiver = Receiver(delay=lambda: rng.uniform(0, 0.02))
    rounds, series = 10, 1000
    async with (
        serve(receiver) as port,
        exporter(port, shards=shards, max_samples_per_send=200) as (exp, _),
    ):
        for r in range(rounds):
            await exp.export(gauges(series, NS + r * 10**9))
        await wait_until(lambda: len(receiver.accepted) == rounds * series, timeout=30)
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
        await wait_until(lambda: metric_value(host, "metricgate_exporter_retries_total") > 0)
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
            await wait_until(lambda: len(receiver.accepted) == 1)
            token.write_text("rotated\n")
            await exp.export(gauges(1, NS + 10**9))
            await wait_until(lambda: len(receiver.accepted) == 2)
        async with exporter(port, basic_auth={"username": "u", "password": "p"}) as (exp, _):
            await exp.export(gauges(1, NS + 2 * 10**9))
            await wait_until(lambda: len(receiver.accepted) == 3)
    assert [h["Authorization"] for h in receiver.headers] == [
        "Bearer first",
        "Bearer rotated",
        "Basic dTpw",
    ]


async def test_shards_follow_the_send_rate_and_keep_each_series_in_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Fast sends: down from 4 to 1 shard; slow sends at a high rate: up again. A reshard only
    creates the new shards once every old one is drained (nothing queued, nothing in flight), so
    no series is ever queued on two shards, and each series' samples arrive in order."""
    from metricgate.pipeline import lanes as module

    monkeypatch.setattr(module, "RESHARD_INTERVAL_S", 0.05)
    created = module.Lanes._memory_lanes
    resizes: list[int] = []

    def checked(self: module.Lanes, count: int) -> list[MemoryLane]:
        for lane in self.lanes:
            assert lane.backlog == 0 and lane.queue.empty() and lane.queue._unfinished_tasks == 0  # type: ignore[attr-defined]
        resizes.append(count)
        return created(self, count)

    monkeypatch.setattr(module.Lanes, "_memory_lanes", checked)
    slow = False
    receiver = Receiver(delay=lambda: 0.05 if slow else 0.0)
    sent = 0
    async with (
        serve(receiver) as port,
        exporter(port, shards={"min": 1, "max": 4}, max_samples_per_send=100) as (exp, _),
    ):
        await exp.lanes.resize(4)
        resizes.clear()
        for step in range(200):
            await exp.export(gauges(10, NS + step * 10**9))
            sent += 10
            if len(exp.lanes) == 1:
                break
            await asyncio.sleep(0.01)
        assert len(exp.lanes) == 1
        slow = True
        for step in range(200, 700):
            await exp.export(gauges(200, NS + step * 10**9))
            sent += 200
            if len(exp.lanes) > 1:
                break
            await asyncio.sleep(0.005)
        assert len(exp.lanes) > 1
        await wait_until(lambda: len(receiver.accepted) == sent, timeout=30)
    assert resizes[0] < 4 and resizes[-1] > 1
    stamps: dict[Any, list[int]] = {}
    for labels, _, ts in receiver.accepted:
        stamps.setdefault(labels, []).append(ts)
    assert all(s == sorted(s) for s in stamps.values())


def test_resharding_sizes_for_the_incoming_rate_and_backlog(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from metricgate.pipeline import lanes as module

    settings = LaneSettings(min=1, max=10)
    resharding = module.Resharding()
    start = resharding.started
    assert resharding.desired(start + 1, 4, 0, start + 1, settings) is None  # interval not up

    # 10k samples/s in and out, 1 ms per 100-sample request: 0.1 sender busy -> 1 shard.
    resharding.received(100_000)
    resharding.sent(100_000, 1.0)
    now = start + 10
    assert resharding.desired(now, 4, 0, now, settings) == 1

    # Sends slow to 50 ms per 100 samples: 5 senders busy, from the next interval on.
    resharding.received(100_000)
    resharding.sent(100_000, 50.0)
    now += 10
    assert resharding.desired(now, 1, 0, now, settings) == 5
    # The incoming rate is weighted: a window at 1.2x (within 30 % once weighted) changes nothing.
    resharding.received(120_000)
    resharding.sent(120_000, 60.0)
    now += 10
    assert resharding.desired(now, 5, 0, now, settings) is None

    # A backlog adds what must be caught up within the interval; capped at max.
    resharding.received(100_000)
    resharding.sent(100_000, 50.0)
    now += 10
    assert resharding.desired(now, 4, 1_000_000, now, settings) == 10

    # No send succeeded within the interval: no change (more shards cannot help).
    resharding.received(100_000)
    now += 10
    assert resharding.desired(now, 10, 0, now - 11, settings) is None
