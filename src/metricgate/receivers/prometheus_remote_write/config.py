"""Config of the `prometheus_remote_write` receiver.

```yaml
receivers:
  prometheus_remote_write:
    endpoint: 0.0.0.0:9201
    path: /api/v1/write
    max_request_body_size: 32MiB
    max_decompressed_size: 128MiB
    strict: false
```

The listener settings of every HTTP receiver apply too (`read_header_timeout`,
`read_timeout`, `idle_timeout`, `max_connections`; see `metricgate.config.listeners`).

Invariant: a validated config can be started as is; every limit is a positive number of bytes.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from metricgate.config.listeners import HttpReceiverSettings
from metricgate.config.types import ByteSize, Endpoint

MIB = 1024 * 1024


class RemoteWriteReceiverConfig(HttpReceiverSettings):
    """`receivers.prometheus_remote_write`: Prometheus remote-write 1.0 and 2.0 over HTTP."""

    endpoint: Endpoint = "0.0.0.0:9201"
    """`host:port` to listen on (all interfaces by default, as a gateway in a container)."""
    path: str = "/api/v1/write"
    """Path that accepts `POST` of remote-write requests."""
    max_request_body_size: ByteSize = Field(default=32 * MIB, gt=0)
    """Largest body on the wire (snappy-compressed); larger gets 413 before it is read."""
    max_decompressed_size: ByteSize = Field(default=128 * MIB, gt=0)
    """Largest body after snappy decompression; larger gets 413, checked before inflating."""
    strict: bool = False
    """Refuse (400) a series whose labels are not sorted by name, as the remote-write spec
    requires of senders; by default they are sorted and accepted, as Prometheus and
    VictoriaMetrics do. Duplicate label names are refused either way."""

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith("/") or " " in value:
            raise ValueError(f"expected a URL path starting with '/', got {value!r}")
        return value
