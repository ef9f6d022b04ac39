"""The loadbalancing exporter's own telemetry, against real downstream metricgate instances.

Per member: points sent add up to what each downstream received, a downed member's failures and
health (and the single log line per change), ring changes and member series removal, and the DNS
resolver's outcomes; the front's `/metrics` endpoint carries all of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from metricgate.config import load_config_text
from metricgate.errors import RetryableError
from metricgate.exporters.loadbalancing import (
    DnsResolver,
    LoadBalancingExporter,
    LoadBalancingExporterConfig,
)
from metricgate.exporters.loadbalancing.config import DnsResolverConfig
from metricgate.exporters.loadbalancing.resolver import getaddrinfo_lookup
from metricgate.pipeline.host import Host
from metricgate.pipeline.service import Service
from metricgate.telemetry.metrics import SelfMetrics
from tests.receivers.otlp_gateway import Gateway
from tests.support.capture import CaptureExporter, InjectReceiver, registry_with_capture
from tests.support.loadbalancing import downstreams, registry, services_batch
from tests.support.poll import wait_until
from tests.support.ports import free_port

PREFIX = "metricgate_exporter_loadbalancing_"
FRONT = """
receivers: {{inject: {{}}}}
exporters:
  loadbalancing:
    sending_queue: {{num_consumers: 2}}
    retry_on_failure: {{initial_interval: 100ms}}
    protocol: {{otlp: {{timeout: 5s, tls: {{insecure: true}}}}}}
    resolver: {{static: {{hostnames: [{hostnames}]}}}}
service:
  pipelines: {{metrics: {{receivers: [inject], exporters: [loadbalancing]}}}}
  telemetry: {{metrics: {{address: "127.0.0.1:0"}}}}
"""
DOWNSTREAM = """
receivers: {{otlp: {{protocols: {{grpc: {{endpoint: "127.0.0.1:{port}"}}}}}}}}
exporters: {{capture: {{}}}}
service:
  pipelines: {{metrics: {{receivers: [otlp], exporters: [capture]}}}}
  telemetry: {{metrics: {{address: ""}}}}
"""


def _value(telemetry: SelfMetrics, name: str, **labels: str) -> float | None:
    return telemetry.registry.get_sample_value(
        PREFIX + name, {"exporter": "loadbalancing", **labels}
    )


def _exporter(hostnames: list[str]) -> LoadBalancingExporter:
    config = LoadBalancingExporterConfig.model_validate(
        {
            "protocol": {"otlp": {"timeout": "2s", "tls": {"insecure": True}}},
            "resolver": {"static": {"hostnames": hostnames}},
        }
    )
    return LoadBalancingExporter("loadbalancing", config)


async def test_points_per_member_add_up_and_are_served_on_the_telemetry_endpoint() -> None:
    batches = [services_batch(), services_batch(2_000_000_000_000_000_000)]
    total = sum(batch.point_count() for batch in batches)
    async with downstreams() as gateways:
        addresses = [g.grpc_target for g in gateways]
        service = Service(
            load_config_text(FRONT.format(hostnames=", ".join(addresses)), registry(), {})
        )
        await service.start()
        try:
            front = InjectReceiver.instances["inject"]
            for batch in batches:
                await front.push(batch)
            telemetry = service.telemetry
            await wait_until(lambda: sum(g.capture.points() for g in gateways) >= total)
            await wait_until(
                lambda: (
                    sum(
                        _value(telemetry, "member_sent_points_total", member=a) or 0
                        for a in addresses
                    )
                    >= total
                )
            )
            assert service.telemetry_server is not None
            url = f"http://127.0.0.1:{service.telemetry_server.port}/metrics"
            async with aiohttp.ClientSession() as session, session.get(url) as reply:
                scraped = _parse(await reply.text())
            in_registry = {
                address: _value(telemetry, "member_sent_points_total", member=address)
                for address in addresses
            }
        finally:
            await service.shutdown(time.monotonic() + 5)
        # Stopped: its member series are gone, so a restarted exporter starts clean.
        assert _value(telemetry, "member_sent_points_total", member=addresses[0]) is None

    def scrape(name: str, **labels: str) -> float | None:
        return scraped.get(
            (PREFIX + name, frozenset({"exporter": "loadbalancing", **labels}.items()))
        )

    for address, gateway in zip(addresses, gateways, strict=True):
        received = gateway.capture.points()
        assert in_registry[address] == received > 0
        assert scrape("member_sent_points_total", member=address) == received
        assert scrape("member_failed_points_total", member=address, reason="retryable") == 0
        assert scrape("member_failed_points_total", member=address, reason="permanent") == 0
        count = scrape("member_send_duration_seconds_count", member=address)
        assert count is not None and count >= 1  # the queue may merge batches
        top = scrape("member_send_duration_seconds_bucket", member=address, le="+Inf")
        assert top == count
        assert scrape("member_healthy", member=address) == 1
        last = scrape("member_last_success_timestamp_seconds", member=address)
        assert last is not None and 0 < time.time() - last < 60
    assert scrape("members") == 3
    assert scrape("ring_changes_total") == 1
    assert scrape("resolutions_total", resolver="static", outcome="success") == 1


def _parse(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@asynccontextmanager
async def _downstream_on(port: int) -> AsyncIterator[CaptureExporter]:
    service = Service(load_config_text(DOWNSTREAM.format(port=port), registry_with_capture(), {}))
    await service.start()
    try:
        yield CaptureExporter.instances["capture"]
    finally:
        await service.shutdown(time.monotonic() + 5)


async def test_a_downed_member_fails_goes_unhealthy_and_recovers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "metricgate.exporters.loadbalancing")
    port = free_port()
    address = f"127.0.0.1:{port}"
    batch = services_batch(per_metric=20)
    telemetry = SelfMetrics()
    exporter = _exporter([address])
    await exporter.start(Host(telemetry))
    try:
        async with _downstream_on(port) as capture:
            await exporter.export(batch)
            assert capture.points() == batch.point_count()
        assert _value(telemetry, "member_healthy", member=address) == 1
        first_success = _value(telemetry, "member_last_success_timestamp_seconds", member=address)
        assert first_success is not None and first_success > 0

        # The member is down: every attempt fails retryably and is counted, health flips once.
        for _ in range(3):
            with pytest.raises(RetryableError):
                await exporter.export(batch)
        failed = _value(telemetry, "member_failed_points_total", member=address, reason="retryable")
        assert failed == 3 * batch.point_count()
        assert _value(telemetry, "member_sent_points_total", member=address) == batch.point_count()
        assert _value(telemetry, "member_healthy", member=address) == 0
        count = _value(telemetry, "member_send_duration_seconds_count", member=address)
        assert count == 4

        # It returns on the same address: the owed part goes through and it is healthy again.
        async with _downstream_on(port) as capture:
            delivered: list[bool] = []

            async def attempt() -> None:
                with contextlib.suppress(RetryableError):  # until it reconnects
                    await exporter.export(batch)
                    delivered.append(True)

            await wait_until(lambda: delivered, attempt, timeout=15, interval=0.1)
            assert capture.points() == batch.point_count()
        assert _value(telemetry, "member_healthy", member=address) == 1
        assert (
            _value(telemetry, "member_sent_points_total", member=address) == 2 * batch.point_count()
        )
        last = _value(telemetry, "member_last_success_timestamp_seconds", member=address)
        assert last is not None and last >= first_success
    finally:
        await exporter.shutdown()
    messages = [record.getMessage() for record in caplog.records]
    assert messages.count("loadbalancing member failing") == 1
    assert messages.count("loadbalancing member recovered") == 1
    failing = next(r for r in caplog.records if r.getMessage() == "loadbalancing member failing")
    assert failing.__dict__["member"] == address


async def test_ring_changes_are_counted_and_departed_members_series_removed() -> None:
    async with downstreams(3) as gateways:
        addresses = [g.grpc_target for g in gateways]
        telemetry = SelfMetrics()
        exporter = _exporter(addresses)
        await exporter.start(Host(telemetry))
        try:
            batch = services_batch(per_metric=20)
            await exporter.export(batch)
            assert _value(telemetry, "members") == 3
            assert _value(telemetry, "ring_changes_total") == 1
            gone = addresses[2]
            assert _value(telemetry, "member_sent_points_total", member=gone)

            await exporter.set_members(addresses[:2])
            await exporter.set_members(addresses[:2])  # no change: not counted
            assert _value(telemetry, "ring_changes_total") == 2
            assert _value(telemetry, "members") == 2
            for name in (
                "member_sent_points_total",
                "member_healthy",
                "member_send_duration_seconds_count",
            ):
                assert _value(telemetry, name, member=gone) is None, name
            for reason in ("retryable", "permanent"):
                assert (
                    _value(telemetry, "member_failed_points_total", member=gone, reason=reason)
                    is None
                )

            await exporter.set_members(addresses)  # it comes back with fresh series
            assert _value(telemetry, "ring_changes_total") == 3
            assert _value(telemetry, "member_sent_points_total", member=gone) == 0
            assert _value(telemetry, "member_healthy", member=gone) == 1
        finally:
            await exporter.shutdown()
        assert _value(telemetry, "members") is None  # a stopped exporter leaves no member series
        assert _value(telemetry, "member_sent_points_total", member=addresses[0]) is None
        assert _value(telemetry, "ring_changes_total") == 3


async def test_dns_resolution_outcomes_are_counted(caplog: pytest.LogCaptureFixture) -> None:
    async with downstreams(1) as gateways:
        gateway: Gateway = gateways[0]
        port = gateway.receiver.grpc_port or 0
        answer: dict[str, object] = {"mode": "real"}

        async def lookup(hostname: str, _: int) -> list[str]:
            mode = answer["mode"]
            if mode == "error":
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            if mode == "empty":
                return []
            if mode == "slow":
                await asyncio.sleep(1)  # a resolver slower than its 0.1 s timeout: under test
            return await getaddrinfo_lookup(hostname, port)  # the real resolver, localhost

        config = LoadBalancingExporterConfig.model_validate(
            {
                "protocol": {"otlp": {"tls": {"insecure": True}}},
                "resolver": {"dns": {"hostname": "localhost", "port": port}},
            }
        )
        resolver = DnsResolver(
            DnsResolverConfig(hostname="localhost", port=port, interval=3600, timeout=0.1), lookup
        )
        telemetry = SelfMetrics()
        exporter = LoadBalancingExporter("loadbalancing", config, resolver)
        await exporter.start(Host(telemetry))
        try:
            for mode in ("real", "error", "empty", "slow", "error"):
                answer["mode"] = mode
                await resolver.refresh()
            assert list(exporter.members) == [f"127.0.0.1:{port}"]  # failures keep the members

            def resolutions(outcome: str) -> float | None:
                return _value(telemetry, "resolutions_total", resolver="dns", outcome=outcome)

            assert resolutions("success") == 2  # start and the first refresh
            assert resolutions("error") == 2
            assert resolutions("empty") == 1
            assert resolutions("timeout") == 1
            assert _value(telemetry, "ring_changes_total") == 1
            assert _value(telemetry, "members") == 1
        finally:
            await exporter.shutdown()
