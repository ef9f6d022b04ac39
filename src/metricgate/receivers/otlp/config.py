"""Config of the `otlp` receiver, in the Collector's shape.

```yaml
receivers:
  otlp:
    protocols:
      grpc: {endpoint: 0.0.0.0:4317, max_recv_msg_size: 20MiB, max_concurrent_streams: 100}
      http: {endpoint: 0.0.0.0:4318, metrics_url_path: /v1/metrics,
             max_request_body_size: 20MiB, max_decompressed_size: 64MiB, read_timeout: 1m}
```

Each protocol also takes its listener settings (`metricgate.config.listeners`): HTTP's
`read_header_timeout`, `read_timeout`, `idle_timeout`, `max_connections`; gRPC's
`max_connections`, `max_concurrent_streams`, `handshake_timeout` and `keepalive`.

A protocol key that is absent disables that protocol; present with `null` or `{}` it is enabled
with its defaults, as in the Collector. At least one protocol is required.

Invariant: a validated config can be started as is; every limit is a positive number of bytes.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator, model_validator

from metricgate.config.listeners import GrpcListenerSettings, HttpReceiverSettings
from metricgate.config.types import ByteSize, ComponentConfig, Endpoint, split_endpoint

MIB = 1024 * 1024


class GrpcProtocolConfig(GrpcListenerSettings):
    """`protocols.grpc`: OTLP over gRPC (`MetricsService/Export`)."""

    endpoint: Endpoint = "localhost:4317"
    """`host:port` to listen on; the Collector's default binds loopback only."""
    max_recv_msg_size: ByteSize = Field(default=20 * MIB, gt=0)
    """Largest request accepted (after gRPC's own decompression); larger gets RESOURCE_EXHAUSTED."""
    max_recv_msg_size_mib: int | None = Field(default=None, gt=0)
    """The Collector's spelling of the same limit, in MiB; wins when set."""

    @property
    def max_receive_bytes(self) -> int:
        if self.max_recv_msg_size_mib:
            return self.max_recv_msg_size_mib * MIB
        return self.max_recv_msg_size


class HttpProtocolConfig(HttpReceiverSettings):
    """`protocols.http`: OTLP over HTTP, protobuf or JSON."""

    endpoint: Endpoint = "localhost:4318"
    """`host:port` to listen on; the Collector's default binds loopback only."""
    metrics_url_path: str = "/v1/metrics"
    """Path that accepts `POST` of metrics."""
    max_request_body_size: ByteSize = Field(default=20 * MIB, gt=0)
    """Largest body on the wire (compressed); larger gets 413 before it is read."""
    max_decompressed_size: ByteSize = Field(default=64 * MIB, gt=0)
    """Largest body after decompression; larger gets 413 (guards against gzip bombs)."""

    @field_validator("metrics_url_path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith("/") or " " in value:
            raise ValueError(f"expected a URL path starting with '/', got {value!r}")
        return value


class ProtocolsConfig(ComponentConfig):
    """`protocols`: which transports to serve; absent means disabled."""

    grpc: GrpcProtocolConfig | None = None
    http: HttpProtocolConfig | None = None

    @model_validator(mode="before")
    @classmethod
    def _null_means_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {key: {} if value is None else value for key, value in data.items()}
        return data

    @model_validator(mode="after")
    def _check(self) -> ProtocolsConfig:
        if self.grpc is None and self.http is None:
            raise ValueError("expected at least one of protocols.grpc or protocols.http")
        if self.grpc is not None and self.http is not None:
            grpc_address = split_endpoint(self.grpc.endpoint)
            if grpc_address[1] and grpc_address == split_endpoint(self.http.endpoint):
                raise ValueError(
                    f"expected grpc and http on different endpoints, both use {self.grpc.endpoint}"
                )
        return self


class OtlpReceiverConfig(ComponentConfig):
    """`receivers.otlp`."""

    protocols: ProtocolsConfig
