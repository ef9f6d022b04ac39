"""`exporters.datadog`: where to send, how to compress, and how OTLP kinds map to Datadog's.

```yaml
exporters:
  datadog:
    api: {key: ${env:DD_API_KEY}, site: datadoghq.eu}   # or key_file: /run/secrets/dd
    endpoint: ""                 # overrides site: POST {endpoint}/api/v2/series
    compression: gzip            # deflate, zstd1, none
    timeout: 15s
    hostname: ""                 # fallback host when a resource names none
    metrics:
      resource_attributes_as_tags: false
      sums: {initial_cumulative_monotonic_value: auto}    # drop, keep
      histograms: {mode: nobuckets, send_aggregation_metrics: true}   # mode: counters
```

Invariant: a config that validates can be started: exactly one of `api.key`/`api.key_file` is set
(the file is read at start, so a rotated secret is picked up on restart).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from metricgate.config.types import ComponentConfig, Duration
from metricgate.pipeline.queue import ExporterConfig


class ApiConfig(ComponentConfig):
    """`api`: the key and the Datadog site."""

    key: str = ""
    key_file: str = ""
    """A file holding the key (surrounding whitespace ignored)."""
    site: str = "datadoghq.com"
    """`datadoghq.com`, `datadoghq.eu`, `us3.datadoghq.com`, ...: the intake is `api.<site>`."""

    @model_validator(mode="after")
    def _one_key(self) -> ApiConfig:
        if bool(self.key) == bool(self.key_file):
            raise ValueError("expected exactly one of api.key and api.key_file")
        return self


class SumsConfig(ComponentConfig):
    """`metrics.sums`: cumulative monotonic sums become delta counts."""

    initial_cumulative_monotonic_value: Literal["auto", "drop", "keep"] = "auto"
    """First point of a series (or after a reset): `keep` sends its value as the count; `drop`
    only remembers it; `auto` sends it when the series started after this exporter did."""


class HistogramsConfig(ComponentConfig):
    """`metrics.histograms`: what a histogram point becomes."""

    mode: Literal["nobuckets", "counters"] = "nobuckets"
    """`counters`: also one `<name>.bucket` count per bucket tagged lower_bound/upper_bound."""
    send_aggregation_metrics: bool = True
    """`<name>.count` and `<name>.sum` counts, `<name>.min`/`.max` gauges when known."""


class MetricsConfig(ComponentConfig):
    """`metrics`: the OTLP -> Datadog mapping."""

    resource_attributes_as_tags: bool = False
    """Every resource attribute as a tag, not just env/service/version."""
    sums: SumsConfig = SumsConfig()
    histograms: HistogramsConfig = HistogramsConfig()


class DatadogExporterConfig(ExporterConfig):
    """`exporters.datadog`: submit series to the v2 intake (`POST /api/v2/series`)."""

    api: ApiConfig
    endpoint: str = ""
    """Base URL of the intake; empty means `https://api.<api.site>`."""
    compression: Literal["gzip", "deflate", "zstd1", "none"] = "gzip"
    timeout: Duration = Field(default=15.0, gt=0)
    hostname: str = ""
    """Host for resources without `host.name` (and friends); empty: this machine's name."""
    metrics: MetricsConfig = MetricsConfig()

    @field_validator("endpoint")
    @classmethod
    def _check_endpoint(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError(f"expected an http:// or https:// URL, got {value!r}")
        return value.rstrip("/")

    @property
    def url(self) -> str:
        """Where series are posted."""
        return f"{self.endpoint or 'https://api.' + self.api.site}/api/v2/series"
