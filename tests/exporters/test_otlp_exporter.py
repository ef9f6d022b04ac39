"""The otlp exporter end to end: into a second in-process metricgate over gRPC and HTTP."""

from __future__ import annotations

import time

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from metricgate.config import load_config_text
from metricgate.errors import PermanentError
from metricgate.exporters.otlp import OtlpEncoder, OtlpExporter, OtlpExporterConfig
from metricgate.model import INTERNER, Batch, Exemplar, MetricKind, MetricPoints, Temporality
from metricgate.pipeline.host import Host
from metricgate.pipeline.service import Service
from metricgate.telemetry.metrics import SelfMetrics
from metricgate.wire.otlp.encode import key_value, varint
from tests.receivers.otlp_data import T0, snapshot
from tests.receivers.otlp_gateway import Gateway, running
from tests.support.capture import InjectReceiver, registry_with_capture
from tests.support.otlp_batches import every_kind_batch


def _exporter(gateway: Gateway, protocol: str, **extra: object) -> OtlpExporter:
    endpoint = (
        gateway.grpc_target
        if protocol == "grpc"
        else f"http://127.0.0.1:{gateway.receiver.http_port}"
    )
    config = OtlpExporterConfig.model_validate(
        {"endpoint": endpoint, "protocol": protocol, "tls": {"insecure": True}, **extra}
    )
    return OtlpExporter(f"otlp/{protocol}", config)


def _sorted(batch: Batch) -> list[tuple[object, ...]]:
    return sorted(snapshot(batch), key=lambda row: (repr(row[0]), repr(row[1]), str(row[2])))


@pytest.mark.parametrize("protocol", ["grpc", "http"])
@pytest.mark.parametrize("compression", ["gzip", "none"])
async def test_every_kind_round_trips_exactly(protocol: str, compression: str) -> None:
    sent = every_kind_batch()
    async with running() as gateway:
        exporter = _exporter(gateway, protocol, compression=compression)
        await exporter.start(Host(SelfMetrics()))
        try:
            assert await exporter.export(sent) is None  # every point delivered, none rejected
            await gateway.wait_for(lambda: gateway.capture.points() == sent.point_count())
        finally:
            await exporter.shutdown()
    (received,) = gateway.capture.batches
    assert _sorted(received) == _sorted(sent)


async def test_second_export_uses_the_caches_and_still_round_trips() -> None:
    sent = every_kind_batch()
    async with running() as gateway:
        exporter = _exporter(gateway, "grpc")
        await exporter.start(Host(SelfMetrics()))
        try:
            await exporter.export(sent)
            await exporter.export(sent)
            await gateway.wait_for(lambda: gateway.capture.points() == 2 * sent.point_count())
        finally:
            await exporter.shutdown()
    assert _sorted(gateway.capture.batches[1]) == _sorted(sent)


async def test_native_prometheus_metrics_go_out_under_their_prometheus_names() -> None:
    resource = INTERNER.intern_resource((("service.name", "job"),))
    scope = INTERNER.intern_scope("")
    metric = INTERNER.intern_metric(
        resource,
        scope,
        "http_requests_total",
        "",
        MetricKind.SUM,
        Temporality.CUMULATIVE,
        True,
        native_prometheus=True,
    )
    group = MetricPoints(metric)
    group.append(INTERNER.intern_series(metric, (("job", "api"),)), 5.0, T0)
    async with running() as gateway:
        exporter = _exporter(gateway, "http")
        await exporter.start(Host(SelfMetrics()))
        try:
            await exporter.export(Batch([group]))
            await gateway.wait_for(lambda: gateway.capture.points() == 1)
        finally:
            await exporter.shutdown()
    (received,) = gateway.capture.batches[0].metrics
    assert received.metric.name == "http_requests_total"
    assert received.metric.monotonic and not received.metric.native_prometheus
    assert received.values == [5.0]
    assert received.series[0].attributes == (("job", "api"),)


@pytest.mark.parametrize("protocol", ["grpc", "http"])
async def test_partial_success_is_counted(protocol: str) -> None:
    sent = every_kind_batch()
    bad = MetricPoints(sent.metrics[0].metric)
    bad.append(sent.metrics[0].series[0], 1.0, 0)  # time 0: the receiver rejects it
    async with running() as gateway:
        exporter = _exporter(gateway, protocol)
        await exporter.start(Host(SelfMetrics()))
        try:
            with pytest.raises(PermanentError) as refusal:
                await exporter.export(Batch([*sent.metrics, bad]))
        finally:
            await exporter.shutdown()
    assert refusal.value.refused == 1
    assert refusal.value.delivered == sent.point_count()


def _requests_answered(gateway: Gateway) -> float:
    """Every request the gateway's otlp receiver answered, whatever the transport and code."""
    return sum(
        sample.value
        for family in gateway.service.telemetry.registry.collect()
        if family.name == "metricgate_receiver_requests"
        for sample in family.samples
        if sample.name.endswith("_total") and sample.labels["receiver"] == "otlp"
    )


@pytest.mark.parametrize("protocol", ["grpc", "http"])
async def test_empty_batch_sends_nothing(protocol: str) -> None:
    sent = every_kind_batch()
    async with running() as gateway:
        exporter = _exporter(gateway, protocol)
        await exporter.start(Host(SelfMetrics()))
        try:
            assert await exporter.export(Batch()) is None
            # A real batch after the empty one: once it has arrived, any request for the empty
            # batch (sent first, on the same exporter) has been answered too.
            assert await exporter.export(sent) is None
            await gateway.wait_for(lambda: gateway.capture.points() == sent.point_count())
        finally:
            await exporter.shutdown()
    assert _requests_answered(gateway) == 1
    assert len(gateway.capture.batches) == 1


@pytest.mark.parametrize(
    ("key", "value"), [("a", "b"), ("", ""), ("a", ""), ("k" * 200, "v" * 300), ("é", "ü")]
)
def test_hand_written_string_attributes_match_protobuf(key: str, value: str) -> None:
    reference = KeyValue(key=key, value=AnyValue(string_value=value)).SerializeToString()
    assert key_value(key, value) == varint(len(reference)) + reference


def test_encoded_request_parses_with_opentelemetry_proto() -> None:
    batch = every_kind_batch()
    request = ExportMetricsServiceRequest.FromString(OtlpEncoder().encode(batch))
    points = sum(
        len(getattr(m, m.WhichOneof("data")).data_points)
        for rm in request.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
    )
    assert points == batch.point_count()
    assert request.resource_metrics[0].schema_url == "https://r/1"


async def test_gateway_to_gateway_through_a_configured_pipeline() -> None:
    text = """
receivers: {inject: {}}
exporters:
  otlp: {endpoint: "%s", protocol: http, headers: {x-scope: a}}
service:
  telemetry: {metrics: {address: ""}}
  pipelines: {metrics: {receivers: [inject], exporters: [otlp]}}
"""
    sent = every_kind_batch()
    async with running() as downstream:
        url = f"http://127.0.0.1:{downstream.receiver.http_port}"
        service = Service(load_config_text(text % url, registry_with_capture(), {}))
        await service.start()
        try:
            await InjectReceiver.instances["inject"].push(sent)
            await downstream.wait_for(lambda: downstream.capture.points() == sent.point_count())
        finally:
            await service.shutdown(time.monotonic() + 2)
    assert _sorted(downstream.capture.batches[0]) == _sorted(sent)


async def test_unencodable_batch_is_permanent() -> None:
    sent = every_kind_batch()
    group = next(g for g in sent.metrics if g.exemplars)
    broken = MetricPoints(group.metric)
    broken.append(group.series[0], 1.0, T0)
    broken.add_exemplars(0, (Exemplar(1.0, T0, trace_id="not hex"),))
    exporter = OtlpExporter("otlp", OtlpExporterConfig(endpoint="127.0.0.1:1"))
    with pytest.raises(PermanentError, match="cannot be encoded"):
        await exporter.export(Batch([broken]))
    await exporter.shutdown()
