"""A gateway process with TLS and authentication on every listener, driven by real clients.

Tenant A's and B's applications export with the OpenTelemetry SDK (HTTP and gRPC, TLS, bearer
tokens); a batch job pushes with `prometheus_client.push_to_gateway` (TLS, basic auth); Prometheus
2.42 scrapes the exporter's page as tenant A (`basic_auth`) and as an admin (`authorization`),
scrapes the gateway's own telemetry as an admin, and remote-writes into the gateway as tenant B
(TLS, basic auth). Each tenant sees only its own series; A cannot write B's names or forge B's
tenant; A's rate overrun leaves B served, and a tenant's cardinality explosion leaves the others'
series of the same metric admitted. No secret reaches the gateway's output or audit log.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import requests
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
    OTLPMetricExporter as GrpcExporter,
)
from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
    OTLPMetricExporter as HttpExporter,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricExporter
from opentelemetry.sdk.metrics.export import MetricExportResult as Result
from opentelemetry.sdk.resources import Resource
from prometheus_client import CollectorRegistry, Gauge, push_to_gateway
from prometheus_client.exposition import tls_auth_handler

from tests.support.gateway import Gateway, register_secrets, run_gateway
from tests.support.otlp_batches import gauges
from tests.support.poll import block_until
from tests.support.ports import free_port
from tests.support.prometheus import PrometheusServer, run_prometheus
from tests.support.security import Pki, htpasswd, make_pki

pytestmark = pytest.mark.integration

PASSWORDS = {
    "prom-a": "pa55-prom-a-7f3e",
    "prom-b": "pa55-prom-b-91c2",
    "ops": "pa55-ops-4d8a",
    "pusher-a": "pa55-pusher-2b6c",
}
TOKENS = {
    "app-a": "tok-app-a-5e1f9c",
    "app-b": "tok-app-b-c07d3a",
    "app-c": "tok-app-c-2a77d1",
    "ops": "tok-ops-88b0e4",
}

TEMPLATE = """
extensions:
  basicauth: {{htpasswd: {{file: "{dir}/htpasswd"}}}}
  bearertokenauth: {{tokens_file: "{dir}/tokens.yaml"}}
receivers:
  otlp:
    protocols:
      http:
        endpoint: "127.0.0.1:{http}"
        tls: &tls {{cert_file: "{pki.server}", key_file: "{pki.server_key}"}}
        auth: &bearer {{authenticator: bearertokenauth}}
      grpc: {{endpoint: "127.0.0.1:{grpc}", tls: *tls, auth: *bearer}}
  prometheus_remote_write:
    endpoint: "127.0.0.1:{remote_write}"
    tls: *tls
    auth: &basic {{authenticator: basicauth}}
  pushgateway: {{endpoint: "127.0.0.1:{push}", tls: *tls, auth: *basic}}
processors:
  cardinality_limit: {{max_series: 100000, max_series_per_metric: 10000, on_limit: drop}}
exporters:
  prometheus: {{endpoint: "127.0.0.1:{prometheus}", tls: *tls, auth: *basic}}
  prometheus/tokens: {{endpoint: "127.0.0.1:{tokens}", tls: *tls, auth: *bearer}}
tenants:
  team-a:
    principals: [prom-a, pusher-a]
    allow_metrics: ["shop_.*", "batch_.*"]
    rate_limit: {{points_per_second: 200, burst: 400}}
  team-b: {{principals: [prom-b]}}
  team-c: {{max_series: 50}}
  platform: {{principals: [ops], roles: [admin]}}
service:
  extensions: [basicauth, bearertokenauth]
  pipelines:
    metrics:
      receivers: [otlp, prometheus_remote_write, pushgateway]
      processors: [cardinality_limit]
      exporters: [prometheus, prometheus/tokens]
  telemetry:
    metrics: {{address: "127.0.0.1:{telemetry}", tls: *tls, auth: *basic}}
    logs: {{level: debug, format: json}}
    audit: {{output: "{dir}/audit.log"}}
"""

SCRAPES = """
scrape_configs:
  - job_name: tenant-a
    scheme: https
    tls_config: {{ca_file: "{ca}"}}
    basic_auth: {{username: prom-a, password: "{prom_a}"}}
    static_configs: [{{targets: ["127.0.0.1:{prometheus}"]}}]
  - job_name: admin
    scheme: https
    tls_config: {{ca_file: "{ca}"}}
    authorization: {{credentials: "{ops_token}"}}
    static_configs: [{{targets: ["127.0.0.1:{tokens}"]}}]
  - job_name: gateway
    scheme: https
    tls_config: {{ca_file: "{ca}"}}
    basic_auth: {{username: ops, password: "{ops}"}}
    static_configs: [{{targets: ["127.0.0.1:{telemetry}"]}}]
  - job_name: gateway-as-tenant
    scheme: https
    tls_config: {{ca_file: "{ca}"}}
    basic_auth: {{username: prom-a, password: "{prom_a}"}}
    static_configs: [{{targets: ["127.0.0.1:{telemetry}"]}}]
remote_write:
  - url: "https://127.0.0.1:{remote_write}/api/v1/write"
    basic_auth: {{username: prom-b, password: "{prom_b}"}}
    tls_config: {{ca_file: "{ca}"}}
    queue_config: {{batch_send_deadline: 1s}}
    write_relabel_configs:
      - {{source_labels: [__name__, job], regex: "metricgate_build_info;gateway", action: keep}}
"""


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[Gateway]:
    directory = tmp_path_factory.mktemp("gateway")
    (directory / "htpasswd").write_text(htpasswd(PASSWORDS))
    (directory / "tokens.yaml").write_text(
        f"- {{token: {TOKENS['app-a']}, principal: app-a, tenant: team-a}}\n"
        f"- {{token: {TOKENS['app-b']}, principal: app-b, tenant: team-b}}\n"
        f"- {{token: {TOKENS['app-c']}, principal: app-c, tenant: team-c}}\n"
        f"- {{token: {TOKENS['ops']}, principal: ops}}\n"
    )
    key_body = "".join(Path(pki.server_key).read_text().splitlines()[1:-1])
    register_secrets(*PASSWORDS.values(), *TOKENS.values(), key_body)
    names = ("grpc", "http", "prometheus", "telemetry", "tokens", "remote_write", "push")
    ports = {name: free_port() for name in names}
    text = TEMPLATE.format(dir=directory, pki=pki, **ports)
    with run_gateway(
        directory,
        text.replace("{", "{{").replace("}", "}}"),  # rendered already
        ports,
        https=names,
        ca=pki.ca,
        logs=[directory / "audit.log"],
    ) as running:
        running.extra["audit"] = directory / "audit.log"
        yield running


def session() -> requests.Session:
    """requests without `REQUESTS_CA_BUNDLE` from the environment overriding `verify`."""
    found = requests.Session()
    found.trust_env = False
    return found


def export(exporter: MetricExporter, tenant_label: str = "") -> Result:
    reader = InMemoryMetricReader()
    provider = MeterProvider(
        resource=Resource.create({"service.name": "shop", "service.instance.id": "pod-1"}),
        metric_readers=[reader],
    )
    meter = provider.get_meter("shop")
    attributes = {"tenant": tenant_label} if tenant_label else {}
    meter.create_counter("shop_orders").add(7, {"route": "/cart", **attributes})
    meter.create_counter("billing_invoices").add(2)
    data = reader.get_metrics_data()
    assert data is not None
    try:
        return exporter.export(data)
    finally:
        exporter.shutdown()
        provider.shutdown()


def http_exporter(gateway: Gateway, pki: Pki, token: str) -> HttpExporter:
    return HttpExporter(
        endpoint=gateway.url("http", "/v1/metrics"),
        certificate_file=pki.ca,
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
        session=session(),
    )


def grpc_exporter(gateway: Gateway, pki: Pki, token: str) -> GrpcExporter:
    return GrpcExporter(
        endpoint=f"localhost:{gateway.ports['grpc']}",
        credentials=grpc.ssl_channel_credentials(Path(pki.ca).read_bytes()),
        headers={"authorization": f"Bearer {token}"},
        timeout=10,
    )


def push(gateway: Gateway, pki: Pki, user: str, password: str) -> None:
    registry = CollectorRegistry()
    Gauge("batch_done", "Last batch run.", registry=registry).set(1)
    cert, key = pki.client("team-a")

    def handler(url: str, method: str, timeout: float | None, headers: Any, data: bytes) -> Any:
        credentials = base64.b64encode(f"{user}:{password}".encode()).decode()
        headers.append(("Authorization", f"Basic {credentials}"))
        return tls_auth_handler(url, method, timeout, headers, data, cert, key, cafile=pki.ca)

    push_to_gateway(gateway.url("push"), "nightly", registry, handler=handler)


def scrape(gateway: Gateway, port: str, auth: Any) -> requests.Response:
    if isinstance(auth, str):
        return session().get(
            gateway.url(port, "/metrics"),
            headers={"Authorization": f"Bearer {auth}"},
            verify=gateway.ca,
            timeout=10,
        )
    return session().get(gateway.url(port, "/metrics"), auth=auth, verify=gateway.ca, timeout=10)


def series_of(prometheus: PrometheusServer, expr: str) -> set[tuple[str, str]]:
    return {
        (sample["metric"].get("__name__", ""), sample["metric"].get("tenant", ""))
        for sample in prometheus.query(expr)
    }


def test_tenants_end_to_end_with_real_clients(tmp_path: Path, gateway: Gateway, pki: Pki) -> None:
    assert export(http_exporter(gateway, pki, TOKENS["app-a"]), "team-b") is Result.SUCCESS
    assert export(grpc_exporter(gateway, pki, TOKENS["app-b"])) is Result.SUCCESS
    push(gateway, pki, "pusher-a", PASSWORDS["pusher-a"])

    config = SCRAPES.format(
        ca=pki.ca,
        prom_a=PASSWORDS["prom-a"],
        prom_b=PASSWORDS["prom-b"],
        ops=PASSWORDS["ops"],
        ops_token=TOKENS["ops"],
        **gateway.ports,
    )
    with run_prometheus(tmp_path, extra_config=config) as prometheus:
        prometheus.wait_for('metricgate_build_info{job="gateway"}')
        # A sees its own series only: its orders (the forged tenant replaced), its push; not B's.
        prometheus.wait_for('batch_done{job="tenant-a"}')
        assert series_of(prometheus, '{job="tenant-a", tenant!=""}') == {
            ("shop_orders_total", "team-a"),
            ("batch_done", "team-a"),
            ("push_time_seconds", "team-a"),
        }
        # The admin sees every tenant's, including B's remote-written Prometheus series.
        prometheus.wait_for('metricgate_build_info{job="admin", tenant="team-b"}')
        admin = series_of(prometheus, '{job="admin", tenant!=""}')
        assert {
            ("shop_orders_total", "team-a"),
            ("shop_orders_total", "team-b"),
            ("billing_invoices_total", "team-b"),
            ("metricgate_build_info", "team-b"),
        } <= admin
        assert ("billing_invoices_total", "team-a") not in admin  # not in A's allow_metrics
        targets = {t["labels"]["job"]: t for t in prometheus.targets_up()}
        assert targets["gateway-as-tenant"]["health"] == "down"
        assert "403" in targets["gateway-as-tenant"]["lastError"]

    page = scrape(gateway, "prometheus", ("prom-b", PASSWORDS["prom-b"])).text
    assert "team-a" not in page and "shop_orders_total{" in page
    assert scrape(gateway, "prometheus", ("prom-b", "wrong")).status_code == 401
    assert scrape(gateway, "tokens", "tok-made-up").status_code == 401

    events = [
        json.loads(line) for line in Path(str(gateway.extra["audit"])).read_text().splitlines()
    ]
    kinds = {event["event"] for event in events}
    assert {"start", "config_load", "auth_success", "auth_failure", "admin_access"} <= kinds


def post(gateway: Gateway, token: str, points: int, name: str = "shop_flood") -> tuple[int, float]:
    """POST `points` gauge points (attribute i = 0..points-1) as the holder of `token`; the
    status and how long the answer took."""
    started = time.perf_counter()
    answer = session().post(
        gateway.url("http", "/v1/metrics"),
        data=gauges(points, name),
        headers={"Content-Type": "application/x-protobuf", "Authorization": f"Bearer {token}"},
        verify=gateway.ca,
        timeout=10,
    )
    return answer.status_code, time.perf_counter() - started


def test_a_tenants_cardinality_explosion_leaves_others_admitted(gateway: Gateway) -> None:
    assert post(gateway, TOKENS["app-c"], 400, "shop_sessions")[0] == 200  # 400 series, budget 50
    assert post(gateway, TOKENS["app-b"], 20, "shop_sessions")[0] == 200

    def page() -> str:
        return scrape(gateway, "tokens", TOKENS["ops"]).text

    def count(text: str, tenant: str) -> int:
        return sum(
            1
            for line in text.splitlines()
            if line.startswith("shop_sessions{") and f'tenant="{tenant}"' in line
        )

    block_until(lambda: count(page(), "team-b") == 20, 60, "B's series on the page", 0.25)
    text = page()
    assert count(text, "team-c") == 50
    assert count(text, "team-b") == 20


def test_a_tenant_over_its_rate_leaves_others_served(gateway: Gateway) -> None:
    flooding = threading.Event()
    statuses: list[int] = []

    def flood() -> None:
        while flooding.is_set():
            statuses.append(post(gateway, TOKENS["app-a"], 300)[0])

    flooding.set()
    floods = [threading.Thread(target=flood) for _ in range(3)]
    for thread in floods:
        thread.start()
    try:
        block_until(lambda: 429 in statuses, 30, "A refused for its rate", 0.25)
        others = [post(gateway, TOKENS["app-b"], 300) for _ in range(20)]
    finally:
        flooding.clear()
        for thread in floods:
            thread.join()
    assert {status for status, _ in others} == {200}
    assert set(statuses) <= {200, 429}
    latencies = sorted(seconds for _, seconds in others)
    print(
        f"tenant B during A's flood: median {latencies[10] * 1000:.1f} ms, max "
        f"{latencies[-1] * 1000:.1f} ms; A answered {statuses.count(429)} x 429"
    )


def test_telemetry_probes_stay_open_and_tls_refuses_strangers(gateway: Gateway, pki: Pki) -> None:
    assert session().get(gateway.url("telemetry", "/readyz"), verify=pki.ca, timeout=5).ok
    assert (
        session().get(gateway.url("telemetry", "/metrics"), verify=pki.ca, timeout=5).status_code
        == 401
    )
    with pytest.raises(requests.exceptions.SSLError):
        session().get(gateway.url("telemetry", "/readyz"), verify=pki.other_ca, timeout=5)
