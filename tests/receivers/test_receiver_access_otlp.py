"""The otlp receiver with `tls` and `auth`: the OpenTelemetry SDK exporters over TLS and mutual
TLS with bearer headers, every refusal path (status, message, the daemon serving on), tenant
stamping, forged tenants and metric rights answered with partial success."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
import requests
from google.protobuf.json_format import MessageToJson
from google.rpc.status_pb2 import Status
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
    OTLPMetricExporter as GrpcExporter,
)
from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
    OTLPMetricExporter as HttpExporter,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricExporter
from opentelemetry.sdk.metrics.export import MetricExportResult as Result
from opentelemetry.sdk.resources import Resource

from metricgate.model import Batch
from tests.support.capture import CaptureExporter
from tests.support.poll import wait_until
from tests.support.security import Pki, SecuredGateway, make_pki, replace_file, secured

TOKENS = """
- {token: tok-a, principal: agent-a, tenant: team-a}
- {token: tok-b, principal: agent-b, tenant: team-b}
- {token: tok-proxy, principal: proxy}
"""

CONFIG = """
extensions:
  bearertokenauth/ci: {{tokens_file: "{tokens}", reload_interval: 10ms}}
  mtls: {{}}
  mtls/uri: {{principal_from: san_uri}}
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: "127.0.0.1:0"
        tls: &tls {{cert_file: "{pki.server}", key_file: "{pki.server_key}"}}
        auth: &bearer {{authenticator: bearertokenauth/ci}}
      http: {{endpoint: "127.0.0.1:0", tls: *tls, auth: *bearer}}
  otlp/mtls:
    protocols:
      grpc:
        endpoint: "127.0.0.1:0"
        tls: &mtls
          {{cert_file: "{pki.server}", key_file: "{pki.server_key}", client_ca_file: "{pki.ca}"}}
        auth: &mtls_auth {{authenticator: mtls}}
      http: {{endpoint: "127.0.0.1:0", tls: *mtls, auth: *mtls_auth}}
  otlp/uri:
    protocols:
      http: {{endpoint: "127.0.0.1:0", tls: *mtls, auth: {{authenticator: mtls/uri}}}}
  otlp/open:
    protocols:
      grpc: {{endpoint: "127.0.0.1:0"}}
      http: {{endpoint: "127.0.0.1:0"}}
exporters:
  capture: {{}}
tenants:
  team-a: {{allow_metrics: ["agent_.*", "http_.*"], delegates: [proxy]}}
  team-b: {{}}
service:
  extensions: [bearertokenauth/ci, mtls, mtls/uri]
  pipelines:
    metrics: {{receivers: [otlp, otlp/mtls, otlp/uri, otlp/open], exporters: [capture]}}
  telemetry:
    metrics: {{address: ""}}
"""


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path / "pki")


@pytest.fixture
async def gateway(tmp_path: Path, pki: Pki) -> AsyncIterator[SecuredGateway]:
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(TOKENS)
    async with secured(CONFIG.format(pki=pki, tokens=tokens)) as running:
        yield running


def own_session() -> requests.Session:
    """A session that keeps the SDK's `certificate_file`: requests lets `REQUESTS_CA_BUNDLE`
    from the environment override a session's `verify`."""
    session = requests.Session()
    session.trust_env = False
    return session


def capture() -> CaptureExporter:
    return CaptureExporter.instances["capture"]


def export_with(exporter: MetricExporter) -> Result:
    """Record two gauges and export them once; the exporter's verdict."""
    reader = InMemoryMetricReader()
    provider = MeterProvider(
        resource=Resource.create({"service.name": "agent"}), metric_readers=[reader]
    )
    meter = provider.get_meter("agent")
    meter.create_counter("agent_requests").add(3, {"route": "/a"})
    meter.create_up_down_counter("http_inflight").add(1)
    data = reader.get_metrics_data()
    assert data is not None
    try:
        return exporter.export(data)
    finally:
        exporter.shutdown()
        provider.shutdown()


def tenants_of(batches: list[Batch]) -> set[tuple[object, object]]:
    """(resource tenant.id, point label tenant) of every series captured."""
    return {
        (group.metric.resource.get("tenant.id"), dict(series.attributes).get("tenant"))
        for batch in batches
        for group in batch
        for series in group.series
    }


def otlp_request(*names: str, tenant_label: str = "", tenant_resource: str = "") -> bytes:
    request = ExportMetricsServiceRequest()
    resource_metrics = request.resource_metrics.add()
    if tenant_resource:
        attribute = resource_metrics.resource.attributes.add(key="tenant.id")
        attribute.value.string_value = tenant_resource
    scope = resource_metrics.scope_metrics.add()
    for name in names:
        point = scope.metrics.add(name=name).gauge.data_points.add(
            as_double=1.0, time_unix_nano=1_700_000_000_000_000_000
        )
        if tenant_label:
            point.attributes.add(key="tenant").value.string_value = tenant_label
    body: bytes = request.SerializeToString()
    return body


def post(
    gateway: SecuredGateway, pki: Pki, body: bytes, token: str | None, **headers: str
) -> requests.Response:
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return requests.post(
        f"https://127.0.0.1:{gateway.port('otlp', 'http')}/v1/metrics",
        data=body,
        headers={"Content-Type": "application/x-protobuf", **headers},
        verify=pki.ca,
        timeout=10,
    )


def message(response: requests.Response) -> str:
    """The message of an OTLP/HTTP error answer (a protobuf `google.rpc.Status`)."""
    text: str = Status.FromString(response.content).message
    return text


@pytest.mark.parametrize("transport", ["http", "grpc"])
async def test_sdk_exporters_over_tls_with_a_bearer_token(
    gateway: SecuredGateway, pki: Pki, transport: str
) -> None:
    exporter: MetricExporter
    if transport == "http":
        exporter = HttpExporter(
            endpoint=f"https://127.0.0.1:{gateway.port('otlp', 'http')}/v1/metrics",
            certificate_file=pki.ca,
            headers={"Authorization": "Bearer tok-a"},
            timeout=10,
            session=own_session(),
        )
    else:
        with open(pki.ca, "rb") as ca:
            credentials = grpc.ssl_channel_credentials(ca.read())
        exporter = GrpcExporter(
            endpoint=f"localhost:{gateway.port('otlp', 'grpc')}",
            credentials=credentials,
            headers={"authorization": "Bearer tok-a"},
            timeout=10,
        )
    assert await asyncio.to_thread(export_with, exporter) is Result.SUCCESS
    assert tenants_of(capture().batches) == {("team-a", "team-a")}
    assert (
        gateway.counter("metricgate_tenant_accepted_points_total", receiver="otlp", tenant="team-a")
        == 2
    )


@pytest.mark.parametrize("transport", ["http", "grpc"])
async def test_sdk_exporters_over_mutual_tls(
    gateway: SecuredGateway, pki: Pki, transport: str
) -> None:
    cert, key = pki.client("team-b")
    exporter: MetricExporter
    if transport == "http":
        exporter = HttpExporter(
            endpoint=f"https://127.0.0.1:{gateway.port('otlp/mtls', 'http')}/v1/metrics",
            certificate_file=pki.ca,
            client_certificate_file=cert,
            client_key_file=key,
            timeout=10,
            session=own_session(),
        )
    else:
        with open(pki.ca, "rb") as ca, open(cert, "rb") as chain, open(key, "rb") as secret:
            credentials = grpc.ssl_channel_credentials(ca.read(), secret.read(), chain.read())
        exporter = GrpcExporter(
            endpoint=f"localhost:{gateway.port('otlp/mtls', 'grpc')}",
            credentials=credentials,
            timeout=10,
        )
    assert await asyncio.to_thread(export_with, exporter) is Result.SUCCESS
    assert tenants_of(capture().batches) == {("team-b", "team-b")}


@pytest.mark.parametrize("client", ["expired", "stranger", None])
async def test_mutual_tls_refuses_bad_certificates(
    gateway: SecuredGateway, pki: Pki, client: str | None
) -> None:
    url = f"https://127.0.0.1:{gateway.port('otlp/mtls', 'http')}/v1/metrics"
    cert = pki.client(client) if client else None
    # TLS 1.3: a refused client certificate surfaces at the client's first read, as a reset.
    with pytest.raises(requests.exceptions.ConnectionError):
        await asyncio.to_thread(
            requests.post, url, data=otlp_request("agent_up"), verify=pki.ca, cert=cert, timeout=10
        )
    assert capture().batches == []
    good = pki.client("team-a")
    answer = await asyncio.to_thread(
        requests.post,
        url,
        data=otlp_request("agent_up"),
        headers={"Content-Type": "application/x-protobuf"},
        verify=pki.ca,
        cert=good,
        timeout=10,
    )
    assert answer.status_code == 200, answer.text


async def test_a_client_that_does_not_trust_the_server_gets_no_answer(
    gateway: SecuredGateway, pki: Pki
) -> None:
    exporter = HttpExporter(
        endpoint=f"https://127.0.0.1:{gateway.port('otlp', 'http')}/v1/metrics",
        certificate_file=pki.other_ca,
        headers={"Authorization": "Bearer tok-a"},
        timeout=5,
        session=own_session(),
    )
    assert await asyncio.to_thread(export_with, exporter) is Result.FAILURE
    assert capture().batches == []


async def test_http_refusals_name_the_problem_and_the_daemon_serves_on(
    gateway: SecuredGateway, pki: Pki
) -> None:
    body = otlp_request("agent_up")
    missing = await asyncio.to_thread(post, gateway, pki, body, None)
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"] == 'Bearer realm="metricgate"'
    assert message(missing) == "authentication required"
    wrong = await asyncio.to_thread(post, gateway, pki, body, "tok-nope")
    assert (wrong.status_code, message(wrong)) == (401, "invalid bearer token")
    assert "tok-nope" not in wrong.text
    not_delegate = await asyncio.to_thread(
        post, gateway, pki, body, "tok-b", **{"X-Scope-OrgID": "team-a"}
    )
    assert not_delegate.status_code == 403
    assert message(not_delegate) == "principal 'agent-b' may not act for tenant 'team-a'"
    assert capture().batches == []
    failures = gateway.counter("metricgate_auth_failures_total", authenticator="bearertokenauth/ci")
    assert failures == 2
    assert (
        gateway.counter(
            "metricgate_tenant_refused_requests_total",
            listener="otlp",
            tenant="",
            reason="permission_denied",
        )
        == 1
    )

    delegated = await asyncio.to_thread(
        post, gateway, pki, body, "tok-proxy", **{"X-Scope-OrgID": "team-a"}
    )
    assert delegated.status_code == 200
    assert tenants_of(capture().batches) == {("team-a", "team-a")}
    events = gateway.audit.getvalue()
    assert '"event":"auth_failure"' in events and '"event":"access_denied"' in events
    assert "tok-" not in events


async def test_grpc_refusals_carry_their_status_codes(gateway: SecuredGateway, pki: Pki) -> None:
    with open(pki.ca, "rb") as ca:
        credentials = grpc.ssl_channel_credentials(ca.read())
    async with grpc.aio.secure_channel(
        f"localhost:{gateway.port('otlp', 'grpc')}", credentials
    ) as channel:
        export = channel.unary_unary(
            "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
            request_serializer=None,
            response_deserializer=ExportMetricsServiceResponse.FromString,
        )
        body = otlp_request("agent_up")
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await export(body, timeout=10)
        assert missing.value.code() is grpc.StatusCode.UNAUTHENTICATED
        assert missing.value.details() == "authentication required"
        with pytest.raises(grpc.aio.AioRpcError) as denied:
            await export(
                body,
                metadata=(("authorization", "Bearer tok-b"), ("x-scope-orgid", "team-a")),
                timeout=10,
            )
        assert denied.value.code() is grpc.StatusCode.PERMISSION_DENIED
        answer = await export(
            otlp_request("agent_up", "secret_plans"),
            metadata=(("authorization", "Bearer tok-a"),),
            timeout=10,
        )
    assert answer.partial_success.rejected_data_points == 1
    assert "'secret_plans' (1 points)" in answer.partial_success.error_message
    assert [g.metric.name for b in capture().batches for g in b] == ["agent_up"]


async def test_metrics_a_tenant_may_not_write_are_refused_by_name(
    gateway: SecuredGateway, pki: Pki
) -> None:
    body = otlp_request("agent_up", "billing_total", "http_requests")
    answer = await asyncio.to_thread(post, gateway, pki, body, "tok-a")
    assert answer.status_code == 200
    partial = ExportMetricsServiceResponse.FromString(answer.content).partial_success
    assert partial.rejected_data_points == 1
    assert partial.error_message == (
        "tenant 'team-a' may not write metrics 'billing_total' (1 points); the rest was accepted"
    )
    names = sorted(g.metric.name for b in capture().batches for g in b)
    assert names == ["agent_up", "http_requests"]
    assert (
        gateway.counter(
            "metricgate_tenant_refused_points_total",
            receiver="otlp",
            tenant="team-a",
            reason="metric_not_allowed",
        )
        == 1
    )


async def test_a_forged_tenant_is_replaced_and_counted(gateway: SecuredGateway, pki: Pki) -> None:
    body = otlp_request("agent_up", tenant_label="team-b", tenant_resource="team-b")
    assert (await asyncio.to_thread(post, gateway, pki, body, "tok-a")).status_code == 200
    assert tenants_of(capture().batches) == {("team-a", "team-a")}
    assert (
        gateway.counter("metricgate_tenant_forged_series_total", receiver="otlp", tenant="team-a")
        == 1
    )


@pytest.mark.parametrize("encoding", ["protobuf", "json", "grpc"])
async def test_a_listener_without_auth_cannot_pass_data_off_as_a_tenants(
    gateway: SecuredGateway, encoding: str
) -> None:
    """Beside authenticating listeners, a client-sent `tenant.id` is taken off (and counted):
    routing, per-tenant budgets and tenant scrape pages read it, so it must be the gateway's."""
    body = otlp_request("agent_up", tenant_label="team-b", tenant_resource="team-a")
    if encoding == "grpc":
        channel = grpc.insecure_channel(f"127.0.0.1:{gateway.port('otlp/open', 'grpc')}")
        export = channel.unary_unary(
            "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
            response_deserializer=ExportMetricsServiceResponse.FromString,
        )
        await asyncio.to_thread(export, body, timeout=10)
        channel.close()
    else:
        as_json = encoding == "json"
        request = ExportMetricsServiceRequest.FromString(body)
        data = MessageToJson(request).encode() if as_json else body
        content_type = "application/json" if as_json else "application/x-protobuf"
        response = await asyncio.to_thread(
            requests.post,
            f"http://127.0.0.1:{gateway.port('otlp/open', 'http')}/v1/metrics",
            data=data,
            headers={"Content-Type": content_type},
            timeout=10,
        )
        assert response.status_code == 200, response.text
    # the point label is the client's own (no tenant stamps it); the resource names no tenant
    assert tenants_of(capture().batches) == {(None, "team-b")}
    forged = "metricgate_tenant_forged_series_total"
    assert gateway.counter(forged, receiver="otlp/open", tenant="") == 1


async def test_a_revoked_token_is_refused_after_the_file_changes(
    tmp_path: Path, gateway: SecuredGateway, pki: Pki
) -> None:
    body = otlp_request("agent_up")
    assert (await asyncio.to_thread(post, gateway, pki, body, "tok-b")).status_code == 200
    replace_file(tmp_path / "tokens.yaml", "- {token: tok-a, principal: agent-a, tenant: team-a}\n")
    answers: list[requests.Response] = []

    async def send() -> None:
        answers.append(await asyncio.to_thread(post, gateway, pki, body, "tok-b"))

    await wait_until(lambda: answers[-1].status_code != 200, send, interval=0.02)
    assert (answers[-1].status_code, message(answers[-1])) == (401, "invalid bearer token")
    assert (await asyncio.to_thread(post, gateway, pki, body, "tok-a")).status_code == 200


async def test_an_mtls_refusal_carries_no_challenge(gateway: SecuredGateway, pki: Pki) -> None:
    answer = await asyncio.to_thread(
        requests.post,
        f"https://127.0.0.1:{gateway.port('otlp/uri', 'http')}/v1/metrics",
        data=otlp_request("agent_up"),
        headers={"Content-Type": "application/x-protobuf"},
        verify=pki.ca,
        cert=pki.client("team-a"),  # verified by TLS, but it has no URI to name a principal
        timeout=10,
    )
    assert answer.status_code == 401
    assert "WWW-Authenticate" not in answer.headers
    assert message(answer) == "the client certificate has no san_uri to name a principal"
