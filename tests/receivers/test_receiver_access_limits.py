"""Per-tenant limits on a receiver with `auth`: ingestion rate and burst, request size,
concurrent connections and gRPC streams, pipelines; each refusal with its status and message,
and the daemon serving the others meanwhile."""

from __future__ import annotations

import asyncio
import http.client
from collections.abc import AsyncIterator

import grpc
import pytest
from google.rpc.status_pb2 import Status

from metricgate.model import Batch
from tests.support.capture import CaptureExporter
from tests.support.otlp_batches import gauges
from tests.support.poll import wait_until
from tests.support.security import SecuredGateway, secured

CONFIG = """
extensions:
  bearertokenauth:
    tokens:
      - {token: tok-rated, principal: rated}
      - {token: tok-small, principal: small}
      - {token: tok-conn, principal: conn}
      - {token: tok-piped, principal: piped}
      - {token: tok-nowhere, principal: nowhere}
      - {token: tok-free, principal: free}
      - {token: tok-stranger, principal: stranger}
      - {token: tok-elsewhere, principal: elsewhere}
receivers:
  otlp:
    protocols:
      grpc: {endpoint: "127.0.0.1:0", auth: {authenticator: bearertokenauth}}
      http: {endpoint: "127.0.0.1:0", auth: {authenticator: bearertokenauth}}
exporters:
  capture: {}
  capture/b: {}
tenants:
  rated: {rate_limit: {points_per_second: 0.01, burst: 4}}
  small: {max_request_size: 200}
  conn: {max_connections: 1, max_streams: 1}
  piped: {pipelines: [metrics/b]}
  nowhere: {pipelines: []}
  free: {}
  elsewhere: {receivers: [otlp/other]}
service:
  extensions: [bearertokenauth]
  pipelines:
    metrics: {receivers: [otlp], exporters: [capture]}
    metrics/b: {receivers: [otlp], exporters: [capture/b]}
  telemetry:
    metrics: {address: ""}
"""

EXPORT = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"


@pytest.fixture
async def gateway() -> AsyncIterator[SecuredGateway]:
    async with secured(CONFIG) as running:
        yield running


def names(capture: str) -> list[str]:
    batches: list[Batch] = CaptureExporter.instances[capture].batches
    return [group.metric.name for batch in batches for group in batch]


class Client:
    """One keep-alive HTTP connection to the receiver."""

    def __init__(self, gateway: SecuredGateway, token: str) -> None:
        self.connection = http.client.HTTPConnection(
            "127.0.0.1", gateway.port("otlp", "http"), timeout=10
        )
        self.token = token

    def post(self, body: bytes) -> tuple[int, str, dict[str, str]]:
        self.connection.request(
            "POST",
            "/v1/metrics",
            body,
            {"Content-Type": "application/x-protobuf", "Authorization": f"Bearer {self.token}"},
        )
        response = self.connection.getresponse()
        content = response.read()
        message = Status.FromString(content).message if response.status != 200 else ""
        return response.status, message, dict(response.getheaders())

    def close(self) -> None:
        self.connection.close()


async def post(gateway: SecuredGateway, token: str, body: bytes) -> tuple[int, str, dict[str, str]]:
    client = Client(gateway, token)
    try:
        return await asyncio.to_thread(client.post, body)
    finally:
        client.close()


async def test_rate_limit_and_burst(gateway: SecuredGateway) -> None:
    status, message, _ = await post(gateway, "tok-rated", gauges(5))
    assert (status, message) == (
        400,
        "a request of 5 points is over tenant 'rated''s burst of 4; send smaller requests or "
        "raise tenants.rated.rate_limit.burst",
    )
    assert (await post(gateway, "tok-rated", gauges(3)))[0] == 200
    status, message, headers = await post(gateway, "tok-rated", gauges(3))
    assert status == 429
    assert message.startswith("tenant 'rated' is over its ingestion rate of 0.01 points/s")
    assert int(headers["Retry-After"]) >= 100
    assert (await post(gateway, "tok-rated", gauges(1)))[0] == 200  # the last token
    status, message, _ = await post(gateway, "tok-rated", gauges(1))
    assert status == 429  # refused at admission, before the body was decoded
    assert message.startswith("tenant 'rated' is over its ingestion rate; retry in")
    assert (
        gateway.counter(
            "metricgate_tenant_refused_requests_total",
            listener="otlp",
            tenant="rated",
            reason="rate_limited",
        )
        == 1
    )
    assert (
        gateway.counter(
            "metricgate_tenant_refused_points_total",
            receiver="otlp",
            tenant="rated",
            reason="rate_limited",
        )
        == 3
    )
    assert (await post(gateway, "tok-free", gauges(50)))[0] == 200  # others are not held back
    assert '"event":"tenant_limit"' in gateway.audit.getvalue()


async def test_request_size_per_tenant(gateway: SecuredGateway) -> None:
    large = gauges(1, padding=400)
    status, message, _ = await post(gateway, "tok-small", large)
    assert (status, message) == (413, f"body of {len(large)} bytes is over the 200 limit")
    assert (await post(gateway, "tok-small", gauges(1)))[0] == 200
    assert (await post(gateway, "tok-free", large))[0] == 200
    async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port('otlp', 'grpc')}") as channel:
        export = channel.unary_unary(EXPORT)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await export(large, metadata=(("authorization", "Bearer tok-small"),), timeout=10)
    assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert refused.value.details() == f"message of {len(large)} bytes is over the 200 byte limit"
    assert (
        gateway.counter(
            "metricgate_tenant_refused_requests_total",
            listener="otlp",
            tenant="small",
            reason="too_large",
        )
        == 2
    )


async def test_connections_per_tenant_over_http(gateway: SecuredGateway) -> None:
    first, second = Client(gateway, "tok-conn"), Client(gateway, "tok-conn")
    other = Client(gateway, "tok-free")
    try:
        assert (await asyncio.to_thread(first.post, gauges(1)))[0] == 200
        assert (await asyncio.to_thread(first.post, gauges(1)))[0] == 200  # the same connection
        status, message, headers = await asyncio.to_thread(second.post, gauges(1))
        assert (status, message) == (
            429,
            "tenant 'conn' already has 1 concurrent connections, its limit "
            "(tenants.conn.max_connections)",
        )
        assert headers["Connection"] == "close"
        assert (await asyncio.to_thread(other.post, gauges(1)))[0] == 200
        first.close()
        retried: list[int] = []

        async def again() -> None:
            retry = Client(gateway, "tok-conn")
            retried.append((await asyncio.to_thread(retry.post, gauges(1)))[0])
            retry.close()  # its close gives the slot back for the next attempt

        await wait_until(lambda: retried[-1] == 200, again)
    finally:
        for client in (first, second, other):
            client.close()


async def test_streams_per_tenant_over_grpc(gateway: SecuredGateway) -> None:
    core = gateway.service.receivers["otlp"].core  # type: ignore[attr-defined]
    deliver, entered, release = core.consumer, asyncio.Event(), asyncio.Event()

    class Held:
        async def consume(self, batch: Batch) -> None:
            entered.set()
            await release.wait()
            await deliver.consume(batch)

    core.consumer = Held()
    metadata = (("authorization", "Bearer tok-conn"),)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port('otlp', 'grpc')}") as channel:
        export = channel.unary_unary(EXPORT)
        held = asyncio.ensure_future(export(gauges(1), metadata=metadata, timeout=10))
        await asyncio.wait_for(entered.wait(), 10)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await export(gauges(1), metadata=metadata, timeout=10)
        assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "already has 1 concurrent streams" in (refused.value.details() or "")
        release.set()
        await held
        await export(gauges(1), metadata=metadata, timeout=10)  # the stream was given back
    assert names("capture") == ["agent_up", "agent_up"]


async def test_pipelines_a_tenant_may_enter(gateway: SecuredGateway) -> None:
    assert (await post(gateway, "tok-piped", gauges(1, "piped_up")))[0] == 200
    assert (await post(gateway, "tok-free", gauges(1, "free_up")))[0] == 200
    await wait_until(lambda: len(names("capture/b")) == 2)
    assert names("capture") == ["free_up"]
    status, message, _ = await post(gateway, "tok-nowhere", gauges(1))
    assert (status, message) == (
        403,
        "tenant 'nowhere' may enter none of the pipelines receiver 'otlp' feeds (metrics, "
        "metrics/b); see tenants.nowhere.pipelines",
    )
    status, message, _ = await post(gateway, "tok-stranger", gauges(1))
    assert (status, message) == (403, "tenant 'stranger' is not configured under tenants")
    status, message, _ = await post(gateway, "tok-elsewhere", gauges(1))
    assert (status, message) == (403, "tenant 'elsewhere' may not send to receiver 'otlp'")
