"""`exporters.otlp`: where and how to send OTLP, in the Collector's `otlp`/`otlphttp` shape.

```yaml
exporters:
  otlp:
    endpoint: collector.example.com:4317   # grpc: host:port or URL; http: URL or host:port
    protocol: grpc                         # or http (POST {endpoint}/v1/metrics, protobuf)
    headers: {x-api-key: ...}
    tenant_header: X-Scope-OrgID           # one request per tenant, the tenant in this header
    compression: gzip                      # or none
    timeout: 10s
    tls: {insecure: false, ca_file: ..., cert_file: ..., key_file: ..., insecure_skip_verify: false}
```

Invariant: a config that validates can be started; every TLS and endpoint check happens here.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import SplitResult, urlsplit

from pydantic import Field, field_validator, model_validator

from metricgate.config.tenant_header import TenantHeader, check_header_clash
from metricgate.config.tls import ClientTls
from metricgate.config.types import Duration
from metricgate.pipeline.queue import ExporterConfig


def _split(endpoint: str) -> SplitResult:
    """An endpoint as URL parts; `host:port` reads as a URL without scheme."""
    return urlsplit(endpoint if "://" in endpoint else f"//{endpoint}")


class TlsConfig(ClientTls):
    """`tls`: transport security towards the backend."""

    insecure: bool = False
    """Plaintext (no TLS) when the endpoint has no `http://`/`https://` scheme to say so."""


class OtlpExporterConfig(ExporterConfig):
    """`exporters.otlp`: send every batch as an `ExportMetricsServiceRequest`."""

    endpoint: str
    protocol: Literal["grpc", "http"] = "grpc"
    headers: dict[str, str] = {}
    """Sent with every request (gRPC metadata keys are lowercased)."""
    tenant_header: TenantHeader | None = None
    """Send each tenant's data in requests of their own, with the tenant in this header."""
    compression: Literal["gzip", "none"] = "gzip"
    timeout: Duration = Field(default=10.0, gt=0)
    """Deadline of one export attempt; a timeout is retried."""
    tls: TlsConfig = TlsConfig()

    @field_validator("endpoint")
    @classmethod
    def _check_endpoint(cls, value: str) -> str:
        if not value or " " in value:
            raise ValueError(f"expected a URL or host:port, got {value!r}")
        parts = _split(value)
        if "://" in value and parts.scheme not in ("http", "https"):
            raise ValueError(f"expected an http:// or https:// URL, got {value!r}")
        try:
            port = parts.port
        except ValueError:
            raise ValueError(f"expected a URL or host:port, got {value!r}") from None
        if not parts.hostname or ("://" not in value and port is None):
            raise ValueError(f"expected a URL or host:port, got {value!r}")
        return value

    @model_validator(mode="after")
    def _check(self) -> OtlpExporterConfig:
        if self.protocol == "grpc" and self.tls.insecure_skip_verify:
            raise ValueError("tls.insecure_skip_verify is not supported with protocol grpc")
        if self.protocol == "grpc" and _split(self.endpoint).path not in ("", "/"):
            raise ValueError(f"endpoint: a grpc endpoint takes no path, got {self.endpoint!r}")
        check_header_clash(self.tenant_header, self.headers)
        if self.tenant_header is not None and self.tenant_header.name.lower() in (
            "content-type",
            "content-encoding",
            "authorization",
        ):
            raise ValueError(
                f"tenant_header: {self.tenant_header.name} is not a header a tenant can go in"
            )
        return self

    @property
    def secure(self) -> bool:
        """Whether to use TLS: the URL scheme decides, else `tls.insecure`."""
        if self.endpoint.startswith("http://"):
            return False
        if self.endpoint.startswith("https://"):
            return True
        return not self.tls.insecure

    @property
    def url(self) -> str:
        """The HTTP URL to POST to: `{endpoint}/v1/metrics` unless the endpoint has a path."""
        base = self.endpoint
        if "://" not in base:
            base = f"{'https' if self.secure else 'http'}://{base}"
        parts = urlsplit(base)
        if parts.path in ("", "/"):
            return base.rstrip("/") + "/v1/metrics"
        return base

    @property
    def grpc_target(self) -> str:
        """`host:port` for grpc, the scheme stripped."""
        parts = _split(self.endpoint)
        host = parts.hostname or ""
        host = f"[{host}]" if ":" in host else host
        port = parts.port or (443 if self.secure else 80)
        return f"{host}:{port}"
