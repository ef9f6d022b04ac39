"""Is an OTLP metrics receiver answering at an address? `metricgate demo` asks before it starts.

One empty OTLP `Export` (gRPC, or `POST /v1/metrics` over HTTP) with a short deadline: a gateway
accepts it as a no-op, so a yes costs nothing and a no is known at once, not after the SDK's
retries gave up.

Invariant: the probe sends no data point, and tells "nothing answers" apart from "something
answers, but not as an OTLP receiver".
"""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Literal
from urllib.parse import urlsplit

import grpc
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)

__all__ = ["probe_otlp"]

_EXPORT = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"
_NOBODY = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}
_BUSY_GRPC = {grpc.StatusCode.RESOURCE_EXHAUSTED}
_BUSY_HTTP = {429, 503}


def probe_otlp(
    endpoint: str, protocol: Literal["grpc", "http"], timeout: float = 3.0
) -> str | None:
    """None when an OTLP metrics receiver answers at `endpoint`; otherwise what is wrong."""
    if protocol == "grpc":
        return _probe_grpc(endpoint.split("://", 1)[-1], timeout)
    return _probe_http(endpoint if "://" in endpoint else f"http://{endpoint}", timeout)


def _probe_grpc(target: str, timeout: float) -> str | None:
    with grpc.insecure_channel(target) as channel:
        export = channel.unary_unary(
            _EXPORT,
            request_serializer=ExportMetricsServiceRequest.SerializeToString,
            response_deserializer=ExportMetricsServiceResponse.FromString,
        )
        try:
            export(ExportMetricsServiceRequest(), timeout=timeout)
        except grpc.RpcError as exc:
            code: grpc.StatusCode = exc.code()
            if code in _BUSY_GRPC:
                return None
            if code in _NOBODY:
                return f"no gateway answers at {target} (gRPC {code.name})"
            return (
                f"{target} answers, but not as an OTLP metrics receiver "
                f"(gRPC {code.name}: {exc.details()})"
            )
    return None


def _probe_http(url: str, timeout: float) -> str | None:
    if urlsplit(url).path in ("", "/"):
        url = url.rstrip("/") + "/v1/metrics"
    request = urllib.request.Request(
        url, data=b"", method="POST", headers={"Content-Type": "application/x-protobuf"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout):
            return None
    except urllib.error.HTTPError as exc:
        if exc.code in _BUSY_HTTP:
            return None
        return f"{url} answers, but not as an OTLP metrics receiver (HTTP {exc.code})"
    except (urllib.error.URLError, OSError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        return f"no gateway answers at {url} ({reason})"
