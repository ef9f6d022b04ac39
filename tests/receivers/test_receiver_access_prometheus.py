"""The remote-write and Pushgateway receivers with `auth`: tenants stamped, metric rights answered
with the rest written and a 400 naming the refused metrics, groups kept per tenant; the real
`prometheus_client.push_to_gateway` with a basic-auth handler; the `routing` processor following
the stamped tenant."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client import CollectorRegistry, Gauge, delete_from_gateway, push_to_gateway
from prometheus_client.exposition import basic_auth_handler

from tests.support.capture import CaptureExporter
from tests.support.poll import wait_until
from tests.support.remote_write import NOW_MS, V1_HEADERS, v1
from tests.support.security import SecuredGateway, htpasswd, secured

USERS = {"team-a": "a-secret-pw", "team-b": "b-secret-pw"}

CONFIG = """
extensions:
  basicauth: {{htpasswd: {{file: "{htpasswd}"}}}}
receivers:
  prometheus_remote_write: {{endpoint: "127.0.0.1:0", auth: &auth {{authenticator: basicauth}}}}
  pushgateway: {{endpoint: "127.0.0.1:0", auth: *auth}}
exporters:
  capture: {{}}
  prometheus: {{endpoint: "127.0.0.1:0", metric_expiration: 1h}}
tenants:
  team-a: {{deny_metrics: ["secret_.*"]}}
  team-b: {{}}
service:
  extensions: [basicauth]
  pipelines:
    metrics: {{receivers: [prometheus_remote_write, pushgateway], exporters: [capture, prometheus]}}
  telemetry:
    metrics: {{address: ""}}
"""


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[SecuredGateway]:
    path = tmp_path / "htpasswd"
    path.write_text(htpasswd(USERS))
    async with secured(CONFIG.format(htpasswd=path)) as running:
        yield running


def scrape(gateway: SecuredGateway) -> str:
    port = gateway.service.exporter_queues["prometheus"].exporter.port  # type: ignore[attr-defined]
    return requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text


async def page_when(gateway: SecuredGateway, ready: Callable[[str], bool]) -> str:
    """The exporter's page, once `ready(page)` (exports run on their own task)."""
    text = [""]

    async def fetch() -> None:
        text[0] = await asyncio.to_thread(scrape, gateway)

    await wait_until(lambda: ready(text[0]), fetch)
    return text[0]


async def page_with(gateway: SecuredGateway, *needles: str) -> str:
    return await page_when(gateway, lambda text: all(n in text for n in needles))


def auth_handler(user: str) -> Any:
    def handler(url: str, method: str, timeout: float | None, headers: Any, data: bytes) -> Any:
        return basic_auth_handler(url, method, timeout, headers, data, user, USERS[user])

    return handler


async def test_remote_write_tenants_and_rights(gateway: SecuredGateway) -> None:
    url = f"http://127.0.0.1:{gateway.port('prometheus_remote_write')}/api/v1/write"
    body = v1(
        ([("__name__", "app_up"), ("tenant", "team-b")], [(1.0, NOW_MS)]),
        ([("__name__", "secret_keys")], [(2.0, NOW_MS)]),
    )
    post = partial(requests.post, url, data=body, headers=V1_HEADERS, timeout=10)
    missing = await asyncio.to_thread(post)
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"].startswith("Basic realm=")
    answer = await asyncio.to_thread(post, auth=("team-a", USERS["team-a"]))
    assert (answer.status_code, answer.text) == (
        400,
        "tenant 'team-a' may not write metrics 'secret_keys' (1 points); the rest was accepted\n",
    )
    page = await page_with(gateway, "app_up")
    assert 'app_up{tenant="team-a"} 1' in page  # the forged tenant label was replaced
    assert "secret_keys" not in page
    assert (
        gateway.counter(
            "metricgate_tenant_forged_series_total",
            receiver="prometheus_remote_write",
            tenant="team-a",
        )
        == 1
    )


async def test_push_to_gateway_with_basic_auth_keeps_groups_per_tenant(
    gateway: SecuredGateway,
) -> None:
    address = f"127.0.0.1:{gateway.port('pushgateway')}"

    def push(user: str, value: float, *names: str) -> None:
        registry = CollectorRegistry()
        for name in names:
            Gauge(name, "pushed", registry=registry).set(value)
        push_to_gateway(address, "nightly", registry, handler=auth_handler(user))

    await asyncio.to_thread(push, "team-a", 1.0, "batch_done")
    await asyncio.to_thread(push, "team-b", 2.0, "batch_done")
    page = await page_with(gateway, 'tenant="team-a"', 'tenant="team-b"')
    assert 'batch_done{job="nightly",tenant="team-a"} 1' in page
    assert 'batch_done{job="nightly",tenant="team-b"} 2' in page  # B's PUT kept A's group

    with pytest.raises(OSError) as refused:  # urllib's HTTPError: the 400 with its message
        await asyncio.to_thread(push, "team-a", 3.0, "batch_done", "secret_rows")
    assert "400" in str(refused.value)
    page = await page_with(gateway, 'batch_done{job="nightly",tenant="team-a"} 3')
    assert "secret_rows" not in page

    def delete(user: str) -> None:
        delete_from_gateway(address, "nightly", handler=auth_handler(user))

    await asyncio.to_thread(delete, "team-a")
    page = await page_when(gateway, lambda text: 'tenant="team-a"' not in text)
    assert 'batch_done{job="nightly",tenant="team-b"} 2' in page

    with pytest.raises(OSError):
        await asyncio.to_thread(push_to_gateway, address, "nightly", CollectorRegistry())
    assert CaptureExporter.instances["capture"].points() > 0


ROUTED = """
extensions:
  bearertokenauth:
    tokens:
      - {token: tok-a, principal: a, tenant: team-a}
      - {token: tok-b, principal: b, tenant: team-b}
receivers:
  otlp:
    protocols:
      http: {endpoint: "127.0.0.1:0", auth: {authenticator: bearertokenauth}}
processors:
  routing:
    default_exporters: [capture/shared]
    table: [{tenants: [team-a], exporters: [capture/a]}]
exporters:
  capture/a: {}
  capture/shared: {}
service:
  extensions: [bearertokenauth]
  pipelines:
    metrics: {receivers: [otlp], processors: [routing], exporters: [capture/a, capture/shared]}
  telemetry:
    metrics: {address: ""}
"""


async def test_routing_follows_the_stamped_tenant_not_the_clients_claim() -> None:
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
        ExportMetricsServiceRequest,
    )

    request = ExportMetricsServiceRequest()
    resource_metrics = request.resource_metrics.add()
    claim = resource_metrics.resource.attributes.add(key="tenant.id")
    claim.value.string_value = "team-a"  # what a client of team-b would like to route as
    resource_metrics.scope_metrics.add().metrics.add(name="up").gauge.data_points.add(
        as_double=1, time_unix_nano=1_700_000_000_000_000_000
    )
    async with secured(ROUTED) as gateway:
        url = f"http://127.0.0.1:{gateway.port('otlp', 'http')}/v1/metrics"
        for token in ("tok-a", "tok-b"):
            answer = await asyncio.to_thread(
                requests.post,
                url,
                data=request.SerializeToString(),
                headers={
                    "Content-Type": "application/x-protobuf",
                    "Authorization": f"Bearer {token}",
                },
                timeout=10,
            )
            assert answer.status_code == 200
        captures = CaptureExporter.instances
        await wait_until(
            lambda: captures["capture/a"].points() + captures["capture/shared"].points() == 2
        )
        tenants = {
            name: {g.metric.resource.get("tenant.id") for b in captures[name].batches for g in b}
            for name in ("capture/a", "capture/shared")
        }
    assert tenants == {"capture/a": {"team-a"}, "capture/shared": {"team-b"}}
