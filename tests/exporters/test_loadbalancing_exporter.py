"""The loadbalancing exporter end to end: a front metricgate routing into three in-process ones."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import pytest

from metricgate.config import load_config_text
from metricgate.errors import PartialExportError
from metricgate.exporters.loadbalancing import (
    DnsResolver,
    LoadBalancingExporter,
    LoadBalancingExporterConfig,
)
from metricgate.exporters.loadbalancing.config import DnsResolverConfig
from metricgate.exporters.loadbalancing.resolver import getaddrinfo_lookup
from metricgate.model import INTERNER, Batch, MetricKind, MetricPoints
from metricgate.pipeline.host import Host
from metricgate.pipeline.service import Service
from metricgate.receivers.otlp import OtlpReceiver
from metricgate.telemetry.metrics import SelfMetrics
from tests.receivers.otlp_gateway import Gateway
from tests.support.batches import metric
from tests.support.capture import CaptureExporter, InjectReceiver, registry_with_capture
from tests.support.loadbalancing import T0, downstreams, registry, services_batch
from tests.support.poll import wait_until

SeriesId = tuple[str, object, object]
FRONT = """
receivers: {{inject: {{}}}}
exporters:
  loadbalancing:
    sending_queue: {{num_consumers: 2}}
    retry_on_failure: {{initial_interval: 100ms}}
    protocol: {{otlp: {{protocol: {protocol}, timeout: 5s, tls: {{insecure: true}}}}}}
    resolver: {{static: {{hostnames: [{hostnames}]}}}}
service:
  pipelines: {{metrics: {{receivers: [inject], exporters: [loadbalancing]}}}}
  telemetry: {{metrics: {{address: ""}}}}
"""


def _points(batches: list[Batch]) -> list[tuple[SeriesId, object, int]]:
    return [
        ((group.metric.name, series.attributes, group.metric.resource.attributes), value, ts)
        for batch in batches
        for group in batch
        for series, value, ts in zip(group.series, group.values, group.timestamps, strict=True)
    ]


def _owners(gateways: list[Gateway]) -> dict[SeriesId, int]:
    """Which downstream got each series; fails if a series reached two."""
    owners: dict[SeriesId, int] = {}
    for index, gateway in enumerate(gateways):
        for series, _, _ in _points(gateway.capture.batches):
            assert owners.setdefault(series, index) == index, f"{series} reached two members"
    return owners


@asynccontextmanager
async def _front(addresses: list[str], protocol: str = "grpc") -> AsyncIterator[InjectReceiver]:
    text = FRONT.format(protocol=protocol, hostnames=", ".join(addresses))
    service = Service(load_config_text(text, registry(), {}))
    await service.start()
    try:
        yield InjectReceiver.instances["inject"]
    finally:
        await service.shutdown(time.monotonic() + 5)


def _address(gateway: Gateway, protocol: str) -> str:
    if protocol == "grpc":
        return gateway.grpc_target
    return f"http://127.0.0.1:{gateway.receiver.http_port}"


async def _send_and_wait(
    front: InjectReceiver, gateways: list[Gateway], batch: Batch, already: int = 0
) -> None:
    await front.push(batch)
    total = already + batch.point_count()
    await gateways[0].wait_for(lambda: sum(g.capture.points() for g in gateways) >= total)


@pytest.mark.parametrize("protocol", ["grpc", "http"])
async def test_every_series_lands_on_exactly_one_member_intact(protocol: str) -> None:
    sent = services_batch()
    async with downstreams() as gateways:
        async with _front([_address(g, protocol) for g in gateways], protocol) as front:
            await _send_and_wait(front, gateways, sent)
            await _send_and_wait(front, gateways, services_batch(T0 + 10**9), sent.point_count())
        owners = _owners(gateways)
        received = sorted(_points([b for g in gateways for b in g.capture.batches]), key=repr)
    assert received == sorted(_points([sent, services_batch(T0 + 10**9)]), key=repr)
    assert len(owners) == sent.point_count()
    shares = [list(owners.values()).count(i) for i in range(3)]
    assert all(share > len(owners) / 3 / 2 for share in shares), shares


async def test_removing_a_member_moves_only_its_series() -> None:
    async with downstreams() as gateways:
        addresses = [g.grpc_target for g in gateways]
        async with _front(addresses) as front:
            await _send_and_wait(front, gateways, services_batch())
        before = _owners(gateways)
        for gateway in gateways:
            gateway.capture.batches.clear()
        async with _front(addresses[:2]) as front:
            await _send_and_wait(front, gateways, services_batch(T0 + 10**9))
        after = _owners(gateways)
    assert set(after) == set(before)
    assert set(after.values()) == {0, 1}
    moved = {series for series in before if before[series] != after[series]}
    assert moved == {series for series, owner in before.items() if owner == 2}


async def test_only_the_failed_members_part_is_sent_again() -> None:
    sent = services_batch()
    async with downstreams(2) as gateways:
        live = [g.grpc_target for g in gateways]
        dead = "127.0.0.1:1"
        config = LoadBalancingExporterConfig.model_validate(
            {
                "protocol": {"otlp": {"timeout": "3s", "tls": {"insecure": True}}},
                "resolver": {"static": {"hostnames": [*live, dead]}},
            }
        )
        exporter = LoadBalancingExporter("loadbalancing", config)
        await exporter.start(Host(SelfMetrics()))
        try:
            owed = exporter.split([sent])[dead].point_count()
            assert 0 < owed < sent.point_count()
            with pytest.raises(PartialExportError, match="1 of 3 members failed") as failure:
                await exporter.export(sent)
            delivered = sent.point_count() - owed
            assert failure.value.delivered == delivered
            assert failure.value.remaining.point_count() == owed
            await gateways[0].wait_for(
                lambda: sum(g.capture.points() for g in gateways) >= delivered
            )
            with pytest.raises(PartialExportError, match="1 of 1 members failed") as again:
                # the retry goes only to the dead member
                await exporter.export(failure.value.remaining)
            await exporter.set_members(live)  # it leaves: its part is routed to the others
            assert await exporter.export(again.value.remaining) == owed
            await gateways[0].wait_for(
                lambda: sum(g.capture.points() for g in gateways) >= sent.point_count()
            )
        finally:
            await exporter.shutdown()
        received = _points([b for g in gateways for b in g.capture.batches])
    assert sorted(received, key=repr) == sorted(_points([sent]), key=repr)


async def test_dns_resolver_follows_localhost_and_its_refreshes() -> None:
    async with downstreams(2) as gateways:
        ports = [g.receiver.grpc_port or 0 for g in gateways]
        target = {"port": ports[0]}

        async def lookup(hostname: str, port: int) -> list[str]:
            return await getaddrinfo_lookup(hostname, target["port"])

        config = LoadBalancingExporterConfig.model_validate(
            {
                "protocol": {"otlp": {"tls": {"insecure": True}}},
                "resolver": {"dns": {"hostname": "localhost", "port": ports[0]}},
            }
        )
        resolver = DnsResolver(
            DnsResolverConfig(hostname="localhost", port=ports[0], interval=0.05), lookup
        )
        exporter = LoadBalancingExporter("loadbalancing", config, resolver)
        await exporter.start(Host(SelfMetrics()))
        try:
            assert list(exporter.members) == [f"127.0.0.1:{ports[0]}"]
            first = services_batch(per_metric=10)
            await exporter.export(first)
            await gateways[0].wait_for(lambda: gateways[0].capture.points() == first.point_count())
            target["port"] = ports[1]  # the name now points elsewhere
            await gateways[0].wait_for(lambda: list(exporter.members) == [f"127.0.0.1:{ports[1]}"])
            await exporter.export(first)
            await gateways[1].wait_for(lambda: gateways[1].capture.points() == first.point_count())
        finally:
            await exporter.shutdown()
        assert gateways[0].capture.points() == first.point_count()


async def test_real_dns_lookup_of_localhost() -> None:
    assert "127.0.0.1:4317" in await getaddrinfo_lookup("localhost", 4317)


AGGREGATING = """
receivers:
  otlp: {protocols: {grpc: {endpoint: "127.0.0.1:0"}}}
processors:
  aggregate:
    rules: [{match: load, interval: 1s, without: [k], outputs: [sum_samples]}]
exporters: {capture: {}}
service:
  pipelines: {metrics: {receivers: [otlp], processors: [aggregate], exporters: [capture]}}
  telemetry: {metrics: {address: ""}}
"""


@asynccontextmanager
async def _aggregating(count: int = 3) -> AsyncIterator[list[tuple[str, CaptureExporter]]]:
    """Stateful downstreams: otlp -> aggregate (sum_samples without k, every 1s) -> capture."""
    async with AsyncExitStack() as stack:
        out = []
        for _ in range(count):
            service = Service(load_config_text(AGGREGATING, registry_with_capture(), {}))
            await service.start()
            stack.push_async_callback(service.shutdown, time.monotonic() + 5)
            receiver = service.receivers["otlp"]
            assert isinstance(receiver, OtlpReceiver)
            out.append((f"127.0.0.1:{receiver.grpc_port}", CaptureExporter.instances["capture"]))
        yield out


@pytest.mark.parametrize("routing_key", ["series", "service"])
async def test_aggregating_members_add_up_to_what_one_instance_gives(routing_key: str) -> None:
    now = time.time_ns()
    sent = Batch([])
    expected: dict[str, float] = {}
    for s in range(30):  # enough services that every member owns some
        m = metric("load", kind=MetricKind.GAUGE, service=f"svc-{s}")
        group = MetricPoints(m)
        for i in range(8):
            group.append(INTERNER.intern_series(m, (("k", str(i)),)), float(i + s), now)
        sent.metrics.append(group)
        expected[f"svc-{s}"] = sum(float(i + s) for i in range(8))
    async with _aggregating() as members:
        config = LoadBalancingExporterConfig.model_validate(
            {
                "routing_key": routing_key,
                "protocol": {"otlp": {"tls": {"insecure": True}}},
                "resolver": {"static": {"hostnames": [address for address, _ in members]}},
            }
        )
        exporter = LoadBalancingExporter("loadbalancing", config)
        await exporter.start(Host(SelfMetrics()))
        try:
            await exporter.export(sent)
        finally:
            await exporter.shutdown()

        def totals() -> list[dict[str, float]]:
            out: list[dict[str, float]] = []
            for _, capture in members:
                mine: dict[str, float] = {}
                for batch in capture.batches:
                    for group in batch:
                        for series, value in zip(group.series, group.values, strict=True):
                            service = str(dict(series.attributes)["job"])
                            assert isinstance(value, float)
                            mine[service] = mine.get(service, 0.0) + value
                out.append(mine)
            return out

        def combined() -> dict[str, float]:
            out: dict[str, float] = {}
            for mine in totals():
                for service, value in mine.items():
                    out[service] = out.get(service, 0.0) + value
            return out

        await wait_until(lambda: combined() == expected, interval=0.05)
        per_member = totals()
    assert all(per_member), "every member aggregated a share"
    if routing_key == "service":  # each service's total is computed whole, in one place
        for service in expected:
            assert sum(service in mine for mine in per_member) == 1
