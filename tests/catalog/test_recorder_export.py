"""`AgentMetrics` built from an endpoint exports OTLP over gRPC and HTTP to a local sink."""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
import pytest
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as pb
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc as pb_grpc

from metricgate.catalog import AgentMetrics


class _Sink:
    """What an OTLP sink received: (transport detail, decoded request) pairs."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, pb.ExportMetricsServiceRequest]] = []

    def metric_names(self) -> set[str]:
        return {
            metric.name
            for _, request in self.requests
            for resource_metrics in request.resource_metrics
            for scope_metrics in resource_metrics.scope_metrics
            for metric in scope_metrics.metrics
        }


class _Servicer(pb_grpc.MetricsServiceServicer):
    def __init__(self, sink: _Sink) -> None:
        self.sink = sink

    def Export(self, request: pb.ExportMetricsServiceRequest, context: Any) -> Any:
        self.sink.requests.append(("grpc", request))
        return pb.ExportMetricsServiceResponse()


@pytest.fixture
def grpc_sink() -> Iterator[tuple[str, _Sink]]:
    sink = _Sink()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    pb_grpc.add_MetricsServiceServicer_to_server(_Servicer(sink), server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"http://127.0.0.1:{port}", sink
    server.stop(grace=None)


@pytest.fixture
def http_sink() -> Iterator[tuple[str, _Sink]]:
    sink = _Sink()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            detail = f"{self.path} {self.headers['Content-Type']}"
            sink.requests.append((detail, pb.ExportMetricsServiceRequest.FromString(body)))
            reply = pb.ExportMetricsServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", sink
    server.shutdown()
    server.server_close()


def _record_and_flush(endpoint: str, protocol: Any) -> None:
    recorder = AgentMetrics(
        endpoint=endpoint, protocol=protocol, service_name="agents", export_interval=3600
    )
    recorder.record_http_request("GET", "/health", 200, 0.01)
    recorder.set_active_sessions(5)
    assert recorder.force_flush(timeout_seconds=10)
    recorder.shutdown(timeout_seconds=10)


def test_grpc_export(grpc_sink: tuple[str, _Sink]) -> None:
    endpoint, sink = grpc_sink
    _record_and_flush(endpoint, "grpc")
    assert sink.requests and {detail for detail, _ in sink.requests} == {"grpc"}
    assert {"http.requests", "http.request.duration", "user.sessions.active"} <= sink.metric_names()
    resource = sink.requests[0][1].resource_metrics[0].resource
    attributes = {a.key: a.value.string_value for a in resource.attributes}
    assert attributes["service.name"] == "agents"


def test_http_export_appends_the_signal_path(http_sink: tuple[str, _Sink]) -> None:
    endpoint, sink = http_sink
    _record_and_flush(endpoint, "http")
    assert sink.requests
    assert {detail for detail, _ in sink.requests} == {"/v1/metrics application/x-protobuf"}
    assert "http.request.duration" in sink.metric_names()


def test_unknown_protocol_is_refused() -> None:
    with pytest.raises(ValueError, match="protocol must be 'grpc' or 'http'"):
        AgentMetrics(endpoint="http://127.0.0.1:1", protocol="kafka")  # type: ignore[arg-type]
