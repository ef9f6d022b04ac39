"""The `prometheus` exporter as a component: HTTP serving, negotiation, gzip, expiry, config."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator

import aiohttp
import pytest

from metricgate.components import BUILTIN_FACTORIES
from metricgate.config import load_config_text
from metricgate.errors import ConfigError
from metricgate.exporters.prometheus import PrometheusExporter, PrometheusExporterConfig
from metricgate.exporters.prometheus.negotiate import accepts_gzip, wants_openmetrics
from metricgate.model import Exemplar, MetricKind, Temporality
from metricgate.pipeline import Host, Registry
from metricgate.pipeline.service import Service
from metricgate.telemetry import SelfMetrics
from tests.exporters.prometheus_points import T0, batch, metric, points
from tests.support.capture import INJECT_FACTORY, InjectReceiver
from tests.support.poll import wait_until

PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;"
    "version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
)
COUNTER = metric("http.requests", MetricKind.SUM, "", Temporality.CUMULATIVE, True, "Requests.")
EXEMPLAR = Exemplar(1.0, T0, "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331")


async def _started(**config: object) -> tuple[PrometheusExporter, SelfMetrics]:
    config.setdefault("endpoint", "127.0.0.1:0")
    exporter = PrometheusExporter("prometheus", PrometheusExporterConfig.model_validate(config))
    telemetry = SelfMetrics()
    await exporter.start(Host(telemetry))
    return exporter, telemetry


@pytest.fixture
async def exporter() -> AsyncIterator[PrometheusExporter]:
    started, _ = await _started()
    await started.export(batch(points(COUNTER, ({"code": 200}, 3.0), exemplars={0: (EXEMPLAR,)})))
    yield started
    await started.shutdown()


async def _get(
    exporter: PrometheusExporter, path: str = "/metrics", **headers: str
) -> tuple[int, dict[str, str], bytes]:
    headers.setdefault("Accept-Encoding", "identity")  # aiohttp asks for gzip by default
    async with (
        aiohttp.ClientSession(auto_decompress=False) as session,
        session.get(f"http://127.0.0.1:{exporter.port}{path}", headers=headers) as response,
    ):
        return response.status, dict(response.headers), await response.read()


async def test_serves_the_text_format_on_the_bound_port(exporter: PrometheusExporter) -> None:
    assert exporter.port
    status, headers, body = await _get(exporter)
    assert status == 200
    assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert body.decode() == (
        "# HELP http_requests_total Requests.\n"
        "# TYPE http_requests_total counter\n"
        'http_requests_total{code="200",job="svc",otel_scope_name="lib",otel_scope_version="1.0"}'
        " 3\n"
    )
    assert (await _get(exporter, "/other"))[0] == 404


async def test_serves_openmetrics_with_exemplars_when_asked(exporter: PrometheusExporter) -> None:
    _, headers, body = await _get(exporter, Accept=PROMETHEUS_ACCEPT)
    assert headers["Content-Type"] == "application/openmetrics-text; version=1.0.0; charset=utf-8"
    text = body.decode()
    assert text.startswith("# TYPE http_requests counter\n# HELP http_requests Requests.\n")
    assert (
        ' 3 # {trace_id="0af7651916cd43dd8448eb211c80319c",span_id="b7ad6b7169203331"} 1 ' in text
    )
    assert text.endswith("# EOF\n")


async def test_openmetrics_can_be_turned_off() -> None:
    exporter, _ = await _started(enable_open_metrics=False)
    try:
        await exporter.export(batch(points(COUNTER, ({}, 1.0), exemplars={0: (EXEMPLAR,)})))
        _, headers, body = await _get(exporter, Accept=PROMETHEUS_ACCEPT)
        assert headers["Content-Type"].startswith("text/plain")
        assert b"trace_id" not in body and b"# EOF" not in body
    finally:
        await exporter.shutdown()


async def test_gzip_when_accepted(exporter: PrometheusExporter) -> None:
    _, headers, body = await _get(exporter, **{"Accept-Encoding": "gzip, deflate"})
    assert headers["Content-Encoding"] == "gzip"
    _, _, plain = await _get(exporter)
    assert gzip.decompress(body) == plain
    _, headers, _ = await _get(exporter, **{"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in headers


async def test_large_pages_stream_whole(exporter: PrometheusExporter) -> None:
    gauge = metric("queue.depth", MetricKind.GAUGE)
    await exporter.export(batch(points(gauge, *(({"i": str(i)}, float(i)) for i in range(30_000)))))
    _, _, body = await _get(exporter, **{"Accept-Encoding": "gzip"})
    lines = gzip.decompress(body).decode().splitlines()
    assert sum(line.startswith("queue_depth{") for line in lines) == 30_000


async def test_series_expire_on_a_timer_without_scrapes() -> None:
    exporter, _ = await _started(metric_expiration="200ms")
    try:
        await exporter.export(batch(points(COUNTER, ({}, 1.0))))
        assert len(exporter.store) == 1
        await wait_until(lambda: len(exporter.store) == 0)
        assert (await _get(exporter))[2] == b""
    finally:
        await exporter.shutdown()


async def test_drops_are_counted_by_reason() -> None:
    exporter, telemetry = await _started(exponential_histograms="drop")
    try:
        updown = metric("pool.used", MetricKind.SUM, "", Temporality.DELTA, False)
        await exporter.export(batch(points(updown, ({}, 1.0), ({"a": "b"}, 2.0))))
        value = telemetry.registry.get_sample_value(
            "metricgate_exporter_dropped_points_total",
            {"exporter": "prometheus", "reason": "delta_non_monotonic_sum"},
        )
        assert value == 2
        await exporter.export(batch(points(COUNTER, ({}, 1.0), ({"a": "b"}, 2.0))))
        active = telemetry.registry.get_sample_value(
            "metricgate_exporter_active_series", {"exporter": "prometheus"}
        )
        assert active == 2
    finally:
        await exporter.shutdown()


async def test_shutdown_is_idempotent_and_safe_before_start() -> None:
    exporter = PrometheusExporter("prometheus", PrometheusExporterConfig())
    await exporter.shutdown()
    started, _ = await _started()
    await started.shutdown()
    await started.shutdown()


async def test_runs_in_a_pipeline_from_config() -> None:
    config = load_config_text(
        """
receivers: {inject: {}}
exporters:
  prometheus/page:
    endpoint: 127.0.0.1:0
    namespace: app
    const_labels: {env: test}
    enable_scope_labels: false
service:
  pipelines: {metrics: {receivers: [inject], exporters: [prometheus/page]}}
  telemetry: {metrics: {address: ""}}
""",
        Registry([*BUILTIN_FACTORIES, INJECT_FACTORY]),
    )
    service = Service(config)
    await service.start()
    try:
        await InjectReceiver.instances["inject"].push(batch(points(COUNTER, ({}, 5.0))))
        exporter = service.exporter_queues["prometheus/page"].exporter
        assert isinstance(exporter, PrometheusExporter)
        await wait_until(lambda: len(exporter.store))
        _, _, body = await _get(exporter)
        assert b'app_http_requests_total{env="test",job="svc"} 5\n' in body
    finally:
        await service.shutdown()


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("const_labels", {"bad-name": "x"}),
        ("const_labels", {"le": "x"}),
        ("path", "metrics"),
        ("namespace", "my-app"),
        ("exponential_histograms", "native"),
        ("metric_expiration", "soon"),
        ("endpoint", "nowhere"),
    ],
)
def test_config_errors_name_the_key(key: str, value: object) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config_text(
            f"""
receivers: {{inject: {{}}}}
exporters: {{prometheus: {{{key}: {value!r}}}}}
service: {{pipelines: {{metrics: {{receivers: [inject], exporters: [prometheus]}}}}}}
""",
            Registry([*BUILTIN_FACTORIES, INJECT_FACTORY]),
        )
    assert f"exporters.prometheus.{key}" in str(raised.value)


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (PROMETHEUS_ACCEPT, True),
        ("application/openmetrics-text", True),
        ("text/plain;version=0.0.4", False),
        ("*/*", False),
        ("", False),
        ("application/openmetrics-text;q=0.1,text/plain;q=0.9", False),
        ("application/openmetrics-text;q=0", False),
        ("application/vnd.google.protobuf;q=0.9,application/openmetrics-text;q=0.5", True),
        (";;,,q=x", False),
    ],
)
def test_accept_negotiation(accept: str, expected: bool) -> None:
    assert wants_openmetrics(accept) is expected


def test_accept_encoding() -> None:
    assert accepts_gzip("gzip")
    assert accepts_gzip("deflate, gzip;q=1.0, *;q=0.5")
    assert not accepts_gzip("gzip;q=0")
    assert not accepts_gzip("")
    assert not accepts_gzip("identity")
