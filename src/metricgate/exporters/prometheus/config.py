"""`exporters.prometheus`: the scrape endpoint's configuration model.

Every key is documented once here and in docs/components/exporters/prometheus.md. Invariant: a
config that validates can be served; all checks (label names, path, namespace) happen here, not at
start.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from metricgate.config.listeners import HttpListenerSettings
from metricgate.config.types import Duration, Endpoint
from metricgate.pipeline.queue import ExporterConfig, QueueSettings
from metricgate.translate.names import LABEL_NAME_RE
from metricgate.translate.options import TranslationOptions


class PrometheusExporterConfig(ExporterConfig, TranslationOptions, HttpListenerSettings):
    """`exporters.prometheus`: serve the pipeline's metrics as a Prometheus scrape page (with the
    listener settings of every HTTP endpoint: `read_header_timeout`, `idle_timeout`,
    `max_connections`)."""

    endpoint: Endpoint = "0.0.0.0:9464"
    """Where the scrape page listens; port 0 picks a free port."""
    path: str = "/metrics"
    const_labels: dict[str, str] = {}
    """Labels put on every series that does not already carry a label of that name."""
    send_timestamps: bool = False
    """Expose each sample with the timestamp of the point it came from."""
    metric_expiration: Duration = Field(default=300.0, gt=0)
    """A series not updated for this long leaves the page (checked on a timer, not at scrape)."""
    resource_attributes: list[str] = []
    """Resource attributes to copy onto every series (they stay in `target_info` too)."""
    enable_open_metrics: bool = True
    """Serve OpenMetrics (with exemplars) to scrapers that ask for it."""
    exponential_histograms: Literal["convert", "drop"] = "convert"
    """`convert`: expose as explicit `le` buckets; `drop`: drop them, counted."""
    normalize_units: bool = False
    """Expose `ms`/`us`/`ns`/`min`/`h`/`d` in seconds and `KiBy`, `MBy`, ... in bytes."""
    sending_queue: QueueSettings = QueueSettings(num_consumers=1)
    """One worker: updates are in-memory and ordered, more workers would only reorder deltas."""

    @field_validator("path")
    @classmethod
    def _check_path(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError(f"expected a path starting with '/', got {value!r}")
        return value

    @field_validator("const_labels")
    @classmethod
    def _check_const_labels(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not LABEL_NAME_RE.match(name) or name.startswith("__"):
                raise ValueError(f"expected label names like [a-zA-Z_][a-zA-Z0-9_]*, got {name!r}")
            if name in ("le", "quantile"):
                raise ValueError(f"label name {name!r} is reserved for histograms and summaries")
        return value
