"""Config of the `pushgateway` receiver.

```yaml
receivers:
  pushgateway:
    endpoint: 0.0.0.0:9091
    max_request_body_size: 16MiB
    max_decompressed_size: 64MiB
```

The listener settings of every HTTP receiver apply too (`read_header_timeout`,
`read_timeout`, `idle_timeout`, `max_connections`; see `metricgate.config.listeners`).

Invariant: a validated config can be started as is; every limit is a positive number of bytes.
"""

from __future__ import annotations

from pydantic import Field

from metricgate.config.listeners import HttpReceiverSettings
from metricgate.config.types import ByteSize, Endpoint

MIB = 1024 * 1024


class PushgatewayReceiverConfig(HttpReceiverSettings):
    """`receivers.pushgateway`: the Prometheus Pushgateway push API (text format 0.0.4)."""

    endpoint: Endpoint = "0.0.0.0:9091"
    """`host:port` to listen on; 9091 is the Pushgateway's port, so clients need no change."""
    max_request_body_size: ByteSize = Field(default=16 * MIB, gt=0)
    """Largest body on the wire; larger gets 413 before it is read."""
    max_decompressed_size: ByteSize = Field(default=64 * MIB, gt=0)
    """Largest body after gzip decompression (`Content-Encoding: gzip`); larger gets 413."""
