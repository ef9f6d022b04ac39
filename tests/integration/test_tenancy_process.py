"""Tenants on the output side, end to end: the OpenTelemetry SDK -> metricgate (subprocess) ->
a recording remote-write server, VictoriaMetrics, and per-tenant scrape endpoints.

Each client is one tenant: its resource carries `tenant.id` and its points the `tenant` label, as
the gateway's stamp writes them for an authenticated listener. VictoriaMetrics single-node stores
what it gets and ignores `X-Scope-OrgID` (only its cluster version reads a tenant, from the URL
path), so the header is checked on a recording server and the data in VictoriaMetrics.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from prometheus_client.parser import text_string_to_metric_families

from tests.support.gateway import Gateway, default_ports, run_gateway
from tests.support.poll import block_until, wait_until
from tests.support.ports import free_port
from tests.support.remote_write import Receiver, serve
from tests.support.victoria import run_victoria_metrics

pytestmark = pytest.mark.integration

TENANTS = ("team-a", "team-b")
ROUNDS = 3
ROUTES = 4


@contextmanager
def tenant_client(gateway: Gateway, tenant: str) -> Iterator[MeterProvider]:
    """An SDK client whose data is `tenant`'s ("" for none), exporting on `force_flush`."""
    exporter = OTLPMetricExporter(endpoint=gateway.url("http", "/v1/metrics"))
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    resource = {"service.name": "agent", "service.instance.id": f"pod-{tenant or 'none'}"}
    if tenant:
        resource["tenant.id"] = tenant
    provider = MeterProvider(resource=Resource.create(resource), metric_readers=[reader])
    try:
        yield provider
    finally:
        provider.shutdown()


def record(provider: MeterProvider, tenant: str, round_: int) -> None:
    counter = provider.get_meter("agent").create_counter("tenant.calls")
    for route in range(ROUTES):
        attributes = {"route": f"r{route}", **({"tenant": tenant} if tenant else {})}
        counter.add(1 + route + (10 if tenant == "team-b" else 0), attributes)
    assert provider.force_flush(10_000), f"round {round_}: export failed"


RW_TEMPLATE = """
receivers:
  otlp:
    protocols:
      http: {{endpoint: "127.0.0.1:{http}"}}
exporters:
  prometheus_remote_write/record:
    endpoint: "http://127.0.0.1:{record}/api/v1/write"
    tenant_header: X-Scope-OrgID
    flush_interval: 10ms
    target_info: {{enabled: false}}
    shards: {{min: 2, max: 2}}
  prometheus_remote_write/victoria:
    endpoint: "http://127.0.0.1:{victoria}/api/v1/write"
    tenant_header: X-Scope-OrgID
    flush_interval: 10ms
service:
  pipelines:
    metrics:
      receivers: [otlp]
      exporters: [prometheus_remote_write/record, prometheus_remote_write/victoria]
  telemetry:
    metrics: {{address: "127.0.0.1:{telemetry}"}}
    logs: {{level: info, format: json}}
"""


async def test_two_tenants_through_one_remote_write_exporter(tmp_path: Path) -> None:
    receiver = Receiver()
    with run_victoria_metrics(tmp_path) as victoria:
        ports = {**default_ports(), "record": free_port(), "victoria": victoria.port}
        async with serve(receiver, ports["record"]):
            with run_gateway(tmp_path, RW_TEMPLATE, ports) as gateway:
                with tenant_client(gateway, "team-a") as a, tenant_client(gateway, "team-b") as b:
                    for round_ in range(ROUNDS):
                        await asyncio.to_thread(record, a, "team-a", round_)
                        await asyncio.to_thread(record, b, "team-b", round_)
                total = ROUNDS * ROUTES * len(TENANTS)
                await wait_until(lambda: len(receiver.accepted) >= total, timeout=30)

                # Every request holds exactly one tenant's series and names it in the header.
                per_tenant: dict[str, set[tuple[str, float]]] = defaultdict(set)
                for (_, samples), headers in zip(receiver.attempts, receiver.headers, strict=True):
                    tenants = {dict(labels).get("tenant") for labels, _, _ in samples}
                    assert tenants == {headers.get("X-Scope-OrgID")}
                    for labels, value, _ in samples:
                        per_tenant[str(dict(labels)["tenant"])].add(
                            (dict(labels)["route"], float(value))
                        )
                for tenant, offset in (("team-a", 0), ("team-b", 10)):
                    finals = {(f"r{r}", float(ROUNDS * (1 + r + offset))) for r in range(ROUTES)}
                    assert finals <= per_tenant[tenant]

                # The same split requests, stored by a real backend: every series, right values.
                def stored() -> dict[tuple[str, str], float]:
                    return {
                        (row["metric"]["tenant"], row["metric"]["route"]): float(row["value"][1])
                        for row in victoria.query("tenant_calls_total")
                    }

                expected = {
                    (tenant, f"r{r}"): float(ROUNDS * (1 + r + offset))
                    for tenant, offset in (("team-a", 0), ("team-b", 10))
                    for r in range(ROUTES)
                }
                await wait_until(lambda: stored() == expected, timeout=60, interval=0.05)
                assert gateway.own_metric("metricgate_exporter_send_failed_points") == 0


ROUTING_TEMPLATE = """
receivers:
  otlp:
    protocols:
      http: {{endpoint: "127.0.0.1:{http}"}}
processors:
  routing:
    default_exporters: [prometheus/shared]
    table:
      - {{tenants: [team-a], exporters: [prometheus/a]}}
      - {{value: team-b, exporters: [prometheus/b]}}
exporters:
  prometheus/a: {{endpoint: "127.0.0.1:{page_a}"}}
  prometheus/b: {{endpoint: "127.0.0.1:{page_b}"}}
  prometheus/shared: {{endpoint: "127.0.0.1:{shared}"}}
service:
  pipelines:
    metrics:
      receivers: [otlp]
      processors: [routing]
      exporters: [prometheus/a, prometheus/b, prometheus/shared]
  telemetry:
    metrics: {{address: "127.0.0.1:{telemetry}"}}
    logs: {{level: info, format: json}}
"""


def tenants_on_page(url: str) -> set[str]:
    text = requests.get(url, timeout=10).text
    return {
        sample.labels.get("tenant", "")
        for family in text_string_to_metric_families(text)
        if family.name == "tenant_calls"
        for sample in family.samples
    }


def test_routing_sends_each_tenant_to_its_own_exporter(tmp_path: Path) -> None:
    ports = {**default_ports(), "page_a": free_port(), "page_b": free_port(), "shared": free_port()}
    with run_gateway(tmp_path, ROUTING_TEMPLATE, ports) as gateway:
        for tenant in (*TENANTS, ""):
            with tenant_client(gateway, tenant) as client:
                record(client, tenant, 0)
        routed = 'metricgate_processor_routed_points_total{processor="routing"'
        # Clients are answered before the pages are written: wait for the routing, then the pages.
        block_until(lambda: gateway.own_metric(routed) >= 3 * ROUTES, 30, "every point routed")
        pages = {name: gateway.url(name, "/metrics") for name in ("page_a", "page_b", "shared")}
        block_until(lambda: all(tenants_on_page(url) for url in pages.values()), 30, "the pages")
        assert tenants_on_page(pages["page_a"]) == {"team-a"}
        assert tenants_on_page(pages["page_b"]) == {"team-b"}
        assert tenants_on_page(pages["shared"]) == {""}
