"""`exporters.cloudwatch`: where to send, and how OTLP points become CloudWatch metric data.

```yaml
exporters:
  cloudwatch:
    mode: put_metric_data          # or emf: Embedded Metric Format log events (see emf.py)
    output: logs                   # emf only: logs (PutLogEvents), stdout or file
    path: ""                       # emf with output: file: the file lines are appended to
    log_group_name: /metrics/MyApp # emf with output: logs: required
    log_stream_name: metricgate    # emf with output: logs
    namespace: MyApp               # required
    region: ""                     # empty: botocore's chain (AWS_REGION, profile, ...)
    endpoint: ""                   # e.g. http://127.0.0.1:5000 for moto or a VPC endpoint
    disable_request_compression: false   # true for moto, which fails on gzipped bodies
    timeout: 15s
    dimension_rollup_option: NoDimensionRollup
    metric_declarations: [{dimensions: [[service, route]], metric_name_selectors: ["^http_"]}]
    resource_to_dimensions: [service.name]
    storage_resolution: 60         # or 1 (high resolution)
    max_metrics_per_request: 1000
```

Credentials come from botocore's default chain (environment, shared profile, SSO, container or
instance role); there is deliberately no key in this config.

Invariant: a config that validates can be started (selectors are compiled here).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from metricgate.config.types import ComponentConfig, Duration
from metricgate.extras import MissingExtraError, require
from metricgate.pipeline.queue import ExporterConfig
from metricgate.regex import GoRegex, RegexError


class MetricDeclaration(ComponentConfig):
    """One `metric_declarations` entry: metrics whose name matches get these dimension sets."""

    dimensions: list[list[str]] = Field(min_length=1)
    """Each set is used when the point has every key in it (at most 30 keys a set)."""
    metric_name_selectors: list[str] = Field(min_length=1)
    """Go (RE2) regular expressions, searched (not fully matched) in the metric name."""

    @field_validator("dimensions")
    @classmethod
    def _check_sets(cls, value: list[list[str]]) -> list[list[str]]:
        for keys in value:
            if len(keys) > 30:
                raise ValueError(f"expected at most 30 dimension keys a set, got {len(keys)}")
        return value

    @field_validator("metric_name_selectors")
    @classmethod
    def _check_selectors(cls, value: list[str]) -> list[str]:
        for pattern in value:
            try:
                GoRegex(pattern, anchored=False)
            except RegexError as exc:
                raise ValueError(f"expected a Go (RE2) regular expression: {exc}") from None
        return value


class CloudWatchExporterConfig(ExporterConfig):
    """`exporters.cloudwatch`: PutMetricData or EMF to CloudWatch (see the module docstring)."""

    mode: Literal["put_metric_data", "emf"] = "put_metric_data"
    output: Literal["logs", "stdout", "file"] = "logs"
    """`emf` only: where the EMF events (one JSON object a line) go."""
    path: str = Field(default="", validate_default=True)
    """`emf` with `output: file`: required; lines are appended."""
    log_group_name: str = Field(default="", max_length=512, validate_default=True)
    """`emf` with `output: logs`: required. Created when missing."""
    log_stream_name: str = Field(default="metricgate", min_length=1, max_length=512)
    """`emf` with `output: logs`. Created when missing."""
    namespace: str = Field(min_length=1, max_length=255)
    region: str = ""
    endpoint: str = ""
    disable_request_compression: bool = False
    timeout: Duration = Field(default=15.0, gt=0)
    dimension_rollup_option: Literal[
        "NoDimensionRollup", "SingleDimensionRollup", "ZeroAndSingleDimensionRollup"
    ] = "NoDimensionRollup"
    """Extra data per point with no / one dimension; each rollup is billed as a metric."""
    metric_declarations: list[MetricDeclaration] = []
    """When set, only metrics some declaration selects are sent, with its dimension sets."""
    resource_to_dimensions: list[str] = []
    """Resource attributes copied into every point's dimensions (point attributes win)."""
    storage_resolution: Literal[1, 60] = 60
    max_metrics_per_request: int = Field(default=1000, ge=1, le=1000)

    @field_validator("path")
    @classmethod
    def _check_path(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("mode") == "emf" and info.data.get("output") == "file" and not value:
            raise ValueError("expected a file path with mode: emf and output: file")
        return value

    @field_validator("log_group_name")
    @classmethod
    def _check_log_group(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("mode") == "emf" and info.data.get("output") == "logs":
            if not value:
                raise ValueError("expected a log group name with mode: emf and output: logs")
            if not re.fullmatch(r"[\w\-/.#]+", value, flags=re.ASCII):
                raise ValueError(
                    f"expected only a-z A-Z 0-9 _ - / . # in a log group, got {value!r}"
                )
        return value

    @model_validator(mode="after")
    def _check_botocore(self) -> CloudWatchExporterConfig:
        # Only EMF to stdout or a file works without AWS calls, hence without botocore.
        if self.mode == "put_metric_data" or self.output == "logs":
            try:
                require("botocore.session", "cloudwatch", "the cloudwatch exporter")
            except MissingExtraError as exc:
                raise ValueError(str(exc)) from None
        return self

    @field_validator("endpoint")
    @classmethod
    def _check_endpoint(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError(f"expected an http:// or https:// URL, got {value!r}")
        return value.rstrip("/")
