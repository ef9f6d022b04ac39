"""Config of the `prometheus` receiver: Prometheus' own `global` and `scrape_configs`, verbatim.

```yaml
receivers:
  prometheus:
    config:                       # or: config_file: /etc/prometheus/prometheus.yml
      global: {scrape_interval: 15s}
      scrape_configs:
        - job_name: app
          static_configs: [{targets: ["app:8080"]}]
          metric_relabel_configs: [{source_labels: [__name__], regex: go_.*, action: drop}]
```

Keys and defaults are Prometheus 2.42's; a `scrape_config` takes every `*_sd_configs` mechanism of
`metricgate.discovery` (inherited from `DiscoveryConfigs`) and the HTTP client keys of
`metricgate.config.http_client` (`proxy_url` and `oauth2` are refused with a message). Keys
Prometheus has but metricgate does not (`rule_files`, `remote_write`, `alerting`, ...) are refused
naming the key, like any unknown key.

Invariant: a validated config can be started as is: job names are unique, every job has an
interval and a timeout no longer than it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Self

import yaml
from pydantic import Field, model_validator

from metricgate.config.http_client import HttpClientConfig
from metricgate.config.types import ByteSize, ComponentConfig, Duration
from metricgate.discovery import DiscoveryConfigs
from metricgate.relabel import RelabelRuleConfig

MIB = 1024 * 1024


class GlobalConfig(ComponentConfig):
    """`global`: the defaults every scrape config inherits."""

    scrape_interval: Duration = Field(default=60.0, gt=0)
    scrape_timeout: Duration = Field(default=10.0, gt=0)
    evaluation_interval: Duration = 60.0
    """Accepted so a prometheus.yml loads as is; metricgate evaluates no rules."""

    @model_validator(mode="after")
    def _timeout(self) -> Self:
        if self.scrape_timeout > self.scrape_interval:
            raise ValueError("scrape_timeout must not be greater than scrape_interval")
        return self


class ScrapeConfig(DiscoveryConfigs, HttpClientConfig):
    """One `scrape_configs` entry (a job)."""

    job_name: str = Field(min_length=1)
    scrape_interval: Duration | None = Field(default=None, gt=0)
    scrape_timeout: Duration | None = Field(default=None, gt=0)
    metrics_path: str = "/metrics"
    scheme: Literal["http", "https"] = "http"
    params: dict[str, list[str]] = {}
    honor_labels: bool = False
    honor_timestamps: bool = True
    sample_limit: int = Field(default=0, ge=0)
    label_limit: int = Field(default=0, ge=0)
    label_name_length_limit: int = Field(default=0, ge=0)
    label_value_length_limit: int = Field(default=0, ge=0)
    body_size_limit: ByteSize = 0
    target_limit: int = Field(default=0, ge=0)
    relabel_configs: list[RelabelRuleConfig] = []
    metric_relabel_configs: list[RelabelRuleConfig] = []

    def interval(self, defaults: GlobalConfig) -> float:
        return self.scrape_interval or defaults.scrape_interval

    def timeout(self, defaults: GlobalConfig) -> float:
        """Prometheus' rule: the global timeout, but never more than this job's interval."""
        if self.scrape_timeout is not None:
            return self.scrape_timeout
        return min(defaults.scrape_timeout, self.interval(defaults))


class PrometheusConfig(ComponentConfig):
    """The part of a prometheus.yml the receiver runs: `global` and `scrape_configs`."""

    global_: GlobalConfig = Field(default=GlobalConfig(), alias="global")
    scrape_configs: list[ScrapeConfig] = []

    @model_validator(mode="after")
    def _jobs(self) -> Self:
        seen: set[str] = set()
        for job in self.scrape_configs:
            if job.job_name in seen:
                raise ValueError(f"job_name {job.job_name!r} is used twice")
            seen.add(job.job_name)
            if job.timeout(self.global_) > job.interval(self.global_):
                raise ValueError(
                    f"scrape_timeout is greater than scrape_interval in job {job.job_name!r}"
                )
        return self


class PrometheusReceiverConfig(ComponentConfig):
    """`receivers.prometheus`: Prometheus scrape configs inline (`config`) or in a file."""

    config: PrometheusConfig = PrometheusConfig()
    config_file: str = ""
    """A prometheus.yml; read when the config is loaded (its keys are checked like inline ones)."""
    max_scrape_size: ByteSize = Field(default=64 * MIB, gt=0)
    """Largest page taken from a target when its job sets no `body_size_limit` (vmagent's
    `-promscrape.maxScrapeSize` idea): a huge page fails that scrape, never the gateway."""

    @model_validator(mode="before")
    @classmethod
    def _file(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not data.get("config_file"):
            return data
        if data.get("config"):
            raise ValueError("give either config or config_file, not both")
        path = Path(str(data["config_file"]))
        try:
            loaded = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise ValueError(f"config_file {str(path)!r} cannot be read: {exc}") from None
        return {**data, "config": loaded or {}}
