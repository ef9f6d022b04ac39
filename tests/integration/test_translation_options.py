"""End to end: the `prometheus` exporter's translation options hold behind any processor.

The OpenTelemetry SDK sends to metricgate (subprocess), where three pipelines end in three
`prometheus` exporters with the same options (`namespace: shop`, `resource_attributes:
[deployment.environment]`): one without processors, one behind a relabel processor whose rules
change nothing, one behind rules that rename a metric and an aggregation. The first two pages must
be the same page; on the third, renamed and aggregated series must still carry the namespace.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from tests.support.gateway import Gateway, default_ports, run_gateway
from tests.support.poll import block_until
from tests.support.ports import free_port

pytestmark = pytest.mark.integration

OPTIONS = "namespace: shop, resource_attributes: [deployment.environment]"
TEMPLATE = """
receivers:
  otlp:
    protocols:
      http: {{endpoint: "127.0.0.1:{http}"}}
processors:
  relabel/noop:
    relabel_configs:
      - {{action: keep, source_labels: [__name__], regex: '.+'}}
      - {{source_labels: [job], target_label: job}}
  relabel/rename:
    relabel_configs:
      - {{source_labels: [__name__], regex: 'http_requests_total', target_label: __name__,
         replacement: 'requests_total'}}
  aggregate:
    rules:
      - {{match: 'requests_total', interval: 1s, without: [instance], outputs: [total],
         keep_input: true}}
exporters:
  prometheus: {{endpoint: "127.0.0.1:{prometheus}", OPTIONS}}
  prometheus/noop: {{endpoint: "127.0.0.1:{noop}", OPTIONS}}
  prometheus/changed: {{endpoint: "127.0.0.1:{changed}", OPTIONS}}
service:
  pipelines:
    metrics: {{receivers: [otlp], exporters: [prometheus]}}
    metrics/noop: {{receivers: [otlp], processors: [relabel/noop], exporters: [prometheus/noop]}}
    metrics/changed:
      receivers: [otlp]
      processors: [relabel/rename, aggregate]
      exporters: [prometheus/changed]
  telemetry:
    metrics: {{address: "127.0.0.1:{telemetry}"}}
""".replace("OPTIONS", OPTIONS)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    ports = {**default_ports(), "noop": free_port(), "changed": free_port()}
    with run_gateway(tmp_path_factory.mktemp("options"), TEMPLATE, ports) as gw:
        exporter = OTLPMetricExporter(endpoint=f"http://127.0.0.1:{ports['http']}/v1/metrics")
        reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
        resource = Resource.create(
            {
                "service.name": "checkout",
                "service.instance.id": "pod-1",
                "deployment.environment": "prod",
            }
        )
        provider = MeterProvider(resource=resource, metric_readers=[reader])
        meter = provider.get_meter("shop", "1.2.3")
        requests = meter.create_counter("http.requests", unit="{request}")
        requests.add(3, {"route": "/cart"})
        meter.create_histogram("http.duration", unit="s").record(0.25, {"route": "/cart"})
        assert provider.force_flush(10_000)
        yield gw
        provider.shutdown()


def page(gateway: Gateway, port: str, needle: str, timeout: float = 15.0) -> str:
    """The page on exporter port `port` once it shows `needle`."""
    return block_until(
        lambda: (text := gateway.scrape(port=port)) and needle in text and text,
        timeout,
        f"{needle!r} on the {port} page",
        0.05,
    )


def test_a_no_op_relabel_changes_nothing_on_the_page(gateway: Gateway) -> None:
    plain = page(gateway, "prometheus", "shop_http_duration_seconds_count")
    assert (
        'shop_http_requests_total{deployment_environment="prod",instance="pod-1",job="checkout",'
        'otel_scope_name="shop",otel_scope_version="1.2.3",route="/cart"} 3\n'
    ) in plain
    assert page(gateway, "noop", "shop_http_duration_seconds_count") == plain


def test_renamed_and_aggregated_series_keep_the_namespace(gateway: Gateway) -> None:
    changed = page(gateway, "changed", "shop_requests_total:1s_without_instance_total")
    assert 'shop_requests_total{deployment_environment="prod",instance="pod-1"' in changed
    assert "\nhttp_requests_total" not in changed and "\nrequests_total" not in changed
    assert 'shop_http_duration_seconds_count{deployment_environment="prod"' in changed
