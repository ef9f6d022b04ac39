"""Reload by difference on a running `Service`: what is kept, rebuilt with its state, or drained."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import grpc
import pytest
from aiohttp import web
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)

from metricgate.config import Config, load_config_text
from metricgate.exporters.prometheus import PrometheusExporter
from metricgate.exporters.prometheus_remote_write import RemoteWriteExporter
from metricgate.pipeline.service import Service
from metricgate.processors.aggregate import AggregateProcessor
from metricgate.processors.cardinality_limit import CardinalityLimiter
from metricgate.receivers.otlp import OtlpReceiver
from tests.support.batches import number_batch
from tests.support.capture import CaptureExporter, InjectReceiver, registry_with_capture
from tests.support.poll import wait_until
from tests.support.ports import free_port

BASE = """
receivers: {{inject: {{}}}}
processors:
  cardinality_limit: {{max_series: {max_series}}}
  filter: {{exclude: {{match_type: strict, metric_names: [never_sent]}}}}
exporters:
  capture: {{}}
  capture/b: {{delay_s: {delay}}}
service:
  telemetry: {{metrics: {{address: ""}}, logs: {{level: warning}}}}
  pipelines:
    metrics:
      receivers: [inject]
      processors: [cardinality_limit, filter]
      exporters: [{exporters}]
"""


def config(max_series: int = 10, exporters: str = "capture, capture/b", delay: float = 0) -> Config:
    text = BASE.format(max_series=max_series, exporters=exporters, delay=delay)
    return load_config_text(text, registry_with_capture(), {})


@asynccontextmanager
async def running(first: Config) -> AsyncIterator[Service]:
    service = Service(first)
    await service.start()
    try:
        yield service
    finally:
        await service.shutdown()


def processor(service: Service, processor_id: str) -> object:
    return service.graph.processors[("metrics", processor_id)].processor


async def push(values: dict[str, float]) -> None:
    await InjectReceiver.instances["inject"].push(number_batch(values))


async def test_an_unchanged_config_keeps_every_object() -> None:
    async with running(config()) as service:
        before = (
            dict(service.receivers),
            [p for _, p in service.processors],
            {eid: (q, q.exporter) for eid, q in service.exporter_queues.items()},
        )
        changes = await service.reload(config())
        after = (
            dict(service.receivers),
            [p for _, p in service.processors],
            {eid: (q, q.exporter) for eid, q in service.exporter_queues.items()},
        )
        assert after == before  # the same objects, compared by identity
        assert changes.rebuilt == changes.added == changes.removed == []
        await push({"a": 1})
        await wait_until(lambda: CaptureExporter.instances["capture"].points() == 1)


async def test_a_changed_limiter_is_rebuilt_keeping_its_series_under_new_limits() -> None:
    async with running(config(max_series=2)) as service:
        old = processor(service, "cardinality_limit")
        filter_before = processor(service, "filter")
        await push({"a": 1, "b": 1, "c": 1})  # c refused: over max_series
        assert isinstance(old, CardinalityLimiter)
        tracked = set(old.tracker.admitted)
        changes = await service.reload(config(max_series=3))
        new = processor(service, "cardinality_limit")
        assert isinstance(new, CardinalityLimiter) and new is not old
        assert processor(service, "filter") is filter_before
        assert "processors.cardinality_limit (pipeline metrics)" in changes.rebuilt
        assert new.tracker is old.tracker and set(new.tracker.admitted) == tracked
        assert new.tracker.max_series == 3
        capture = CaptureExporter.instances["capture"]
        capture.batches.clear()
        await push({"a": 2, "b": 2, "d": 2, "e": 2})  # d takes the third slot, e is refused
        await wait_until(lambda: capture.points() > 0)
        seen = {s.attributes[0][1] for b in capture.batches for g in b.metrics for s in g.series}
        assert seen == {"a", "b", "d", True}  # e folded into the overflow series


async def test_a_removed_exporter_drains_its_queue_and_an_added_one_gets_data() -> None:
    async with running(config(exporters="capture, capture/b", delay=0.01)) as service:
        slow = CaptureExporter.instances["capture/b"]
        queue = service.exporter_queues["capture/b"]
        for i in range(20):
            await push({f"s{i}": i})
        assert queue.size > 0
        changes = await service.reload(config(exporters="capture", delay=0.01))
        assert changes.removed == ["exporters.capture/b"]
        assert slow.points() == 20  # drained, like at shutdown
        assert "capture/b" not in service.exporter_queues
        changes = await service.reload(config(exporters="capture, capture/b", delay=0))
        assert changes.added == ["exporters.capture/b"]
        await push({"x": 1})
        await wait_until(lambda: CaptureExporter.instances["capture/b"].points() == 1)


AGGREGATE = """
receivers: {{inject: {{}}}}
processors:
  aggregate:
    rules:
      - {{match: '{{__name__=~"requests.*"}}', interval: 1h, outputs: [total], name: kept}}
      - {{match: '{{__name__=~"requests.*"}}', interval: 1h, outputs: [{changing}], name: changed}}
exporters: {{capture: {{}}}}
service:
  telemetry: {{metrics: {{address: ""}}, logs: {{level: warning}}}}
  pipelines:
    metrics: {{receivers: [inject], processors: [aggregate], exporters: [capture]}}
"""


async def test_aggregate_keeps_the_windows_of_unchanged_rules() -> None:
    registry = registry_with_capture()
    first = load_config_text(AGGREGATE.format(changing="count_samples"), registry, {})
    second = load_config_text(AGGREGATE.format(changing="sum_samples"), registry, {})
    capture = CaptureExporter.instances
    service = Service(first)
    await service.start()
    try:
        old = processor(service, "aggregate")
        assert isinstance(old, AggregateProcessor)
        await push({"a": 1})
        kept_rule, changed_rule = old.rules
        assert kept_rule.inputs
        await service.reload(second)
        new = processor(service, "aggregate")
        assert isinstance(new, AggregateProcessor) and new is not old
        assert new.rules[0] is kept_rule and new.rules[1] is not changed_rule
        # The removed rule's window was flushed by the old processor, the kept one was not.
        await wait_until(lambda: capture["capture"].points() > 0)
        names = {g.metric.name for b in capture["capture"].batches for g in b.metrics}
        assert names == {"requests_total:1h_count_samples"}, names
        await push({"a": 3})
    finally:
        await service.shutdown()
    names = {g.metric.name for b in capture["capture"].batches for g in b.metrics}
    assert "requests_total:1h_total" in names and "requests_total:1h_sum_samples" in names


EXPORTERS = """
receivers: {{inject: {{}}}}
exporters:
  prometheus: {{endpoint: "127.0.0.1:{page}", metric_expiration: {expiration}}}
  prometheus_remote_write:
    endpoint: "http://127.0.0.1:{backend}/write"
    headers: {{X-Team: {team}}}
    flush_interval: 10ms
service:
  telemetry: {{metrics: {{address: ""}}, logs: {{level: warning}}}}
  pipelines:
    metrics: {{receivers: [inject], exporters: [prometheus, prometheus_remote_write]}}
"""


async def test_rebuilt_exporters_keep_their_queue_shards_series_and_socket() -> None:
    teams: list[str] = []

    async def write(request: web.Request) -> web.Response:
        await request.read()
        teams.append(request.headers.get("X-Team", ""))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/write", write)
    runner = web.AppRunner(app)
    await runner.setup()
    backend = free_port()
    await web.TCPSite(runner, "127.0.0.1", backend).start()
    ports = {"page": free_port(), "backend": backend}

    def variant(team: str, expiration: str) -> Config:
        text = EXPORTERS.format(team=team, expiration=expiration, **ports)
        return load_config_text(text, registry_with_capture(), {})

    try:
        async with running(variant("a", "5m")) as service, aiohttp.ClientSession() as http:
            await push({"a": 1})
            await wait_until(lambda: teams == ["a"])
            page = f"http://127.0.0.1:{ports['page']}/metrics"
            async with http.get(page) as response:
                assert 'k="a"' in await response.text()
            queue = service.exporter_queues["prometheus_remote_write"]
            writer, lanes = queue.exporter, queue.lanes
            assert isinstance(writer, RemoteWriteExporter) and lanes is not None
            scrape_page = service.exporter_queues["prometheus"].exporter
            assert isinstance(scrape_page, PrometheusExporter)

            changes = await service.reload(variant("b", "10m"))
            assert sorted(changes.rebuilt) == [
                "exporters.prometheus",
                "exporters.prometheus_remote_write",
            ]
            assert service.exporter_queues["prometheus_remote_write"] is queue
            new_writer = queue.exporter
            assert isinstance(new_writer, RemoteWriteExporter) and new_writer is not writer
            assert queue.lanes is lanes and new_writer.encoder is writer.encoder
            assert new_writer.lanes is lanes
            new_page = service.exporter_queues["prometheus"].exporter
            assert isinstance(new_page, PrometheusExporter) and new_page is not scrape_page
            assert new_page.store is scrape_page.store and new_page.port == scrape_page.port
            async with http.get(page) as response:  # same socket, same series
                assert 'k="a"' in await response.text()

            await push({"b": 1})
            await wait_until(lambda: teams[-1:] == ["b"])
            async with http.get(page) as response:
                assert 'k="b"' in await response.text()
    finally:
        await runner.cleanup()


OTLP = """
receivers:
  otlp:
    protocols:
      grpc: {{endpoint: "127.0.0.1:{grpc}"}}
      http: {{endpoint: "127.0.0.1:{http}"}}
exporters: {{capture: {{}}}}
service:
  telemetry: {{metrics: {{address: ""}}, logs: {{level: warning}}}}
  pipelines:
    metrics: {{receivers: [otlp], exporters: [capture]}}
"""


def export_request(name: str) -> ExportMetricsServiceRequest:
    request = ExportMetricsServiceRequest()
    metric = request.resource_metrics.add().scope_metrics.add().metrics.add(name=name)
    metric.gauge.data_points.add(time_unix_nano=1, as_double=1.0)
    return request


async def test_a_rebuilt_receiver_keeps_its_unchanged_listener_and_connections() -> None:
    ports = {"grpc": free_port(), "http": free_port()}
    registry = registry_with_capture()
    async with running(load_config_text(OTLP.format(**ports), registry, {})) as service:
        old = service.receivers["otlp"]
        assert isinstance(old, OtlpReceiver)
        grpc_server = old._grpc
        async with grpc.aio.insecure_channel(f"127.0.0.1:{ports['grpc']}") as channel:
            export = channel.unary_unary(
                "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
                request_serializer=ExportMetricsServiceRequest.SerializeToString,
                response_deserializer=ExportMetricsServiceResponse.FromString,
            )
            await export(export_request("before"))
            moved = {**ports, "http": free_port()}
            changes = await service.reload(load_config_text(OTLP.format(**moved), registry, {}))
            assert changes.rebuilt == ["receivers.otlp"]
            new = service.receivers["otlp"]
            assert isinstance(new, OtlpReceiver) and new is not old
            assert new._grpc is grpc_server and new.http_port == moved["http"]
            await export(export_request("after"))  # the same channel, the same connection
            assert channel.get_state() == grpc.ChannelConnectivity.READY
        capture = CaptureExporter.instances["capture"]
        await wait_until(lambda: capture.points() == 2)
        async with aiohttp.ClientSession() as http:
            url = f"http://127.0.0.1:{moved['http']}/v1/metrics"
            body = export_request("http").SerializeToString()
            headers = {"Content-Type": "application/x-protobuf"}
            async with http.post(url, data=body, headers=headers) as response:
                assert response.status == 200


FAILING = """
receivers: {{inject: {{}}}}
processors:
  cardinality_limit: {{max_series: {max_series}}}
  aggregate:
    rules:
      - {{match: '{{__name__=~"requests.*"}}', interval: 1h, outputs: [total]}}
      - {{match: '{{__name__=~"requests.*"}}', interval: 1h, outputs: [{output}]}}
exporters:
  capture: {{}}
  prometheus: {{endpoint: "127.0.0.1:{port}"}}
service:
  telemetry: {{metrics: {{address: ""}}, logs: {{level: warning}}}}
  pipelines:
    metrics:
      receivers: [inject]
      processors: [cardinality_limit, aggregate]
      exporters: [{exporters}]
"""


async def test_a_reload_that_cannot_start_a_component_changes_nothing() -> None:
    registry = registry_with_capture()
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]

    def variant(max_series: int, output: str, exporters: str) -> Config:
        text = FAILING.format(max_series=max_series, output=output, exporters=exporters, port=port)
        return load_config_text(text, registry, {})

    try:
        async with running(variant(10, "count_samples", "capture")) as service:
            limiter, aggregate = (b.processor for b in service.graph.processors.values())
            assert isinstance(limiter, CardinalityLimiter)
            assert isinstance(aggregate, AggregateProcessor)
            await push({"a": 1})
            rules, budgets = list(aggregate.rules), limiter.budgets
            with pytest.raises(OSError, match="cannot listen on"):
                await service.reload(variant(20, "sum_samples", "capture, prometheus"))
            assert [b.processor for b in service.graph.processors.values()] == [
                limiter,
                aggregate,
            ]
            assert aggregate.rules == rules and limiter.budgets is budgets
            assert limiter.tracker.max_series == 10  # its own caps again
            assert aggregate._task is not None and not aggregate._task.done()
            assert list(service.exporter_queues) == ["capture"]
    finally:
        taken.close()
    names = {g.metric.name for b in CaptureExporter.instances["capture"].batches for g in b.metrics}
    assert "requests_total:1h_total" in names  # flushed once, at the end
