"""`http_sd_configs`: targets fetched from an HTTP endpoint every `refresh_interval` (60s).

The endpoint must answer 200 with `Content-Type: application/json` and a JSON list of static
configs (Prometheus' HTTP SD format); the request carries `Accept: application/json` and
`X-Prometheus-Refresh-Interval-Seconds`, and the HTTP client keys (`basic_auth`, `authorization`,
`tls_config`, ...). Groups are sourced `<url>:<index>` and carry `__meta_url`. Any other answer
(a status, a content type, bad JSON, a timeout, which is the refresh interval) keeps the last
groups and is logged, rate-limited.

Invariant: the last good answer stays in force until a good answer replaces it.
"""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

import aiohttp
from pydantic import field_validator

from metricgate.config.http_client import HttpClientConfig
from metricgate.discovery.client import HttpClient
from metricgate.discovery.refresh import Interval, PeriodicDiscoverer
from metricgate.discovery.static import groups_from_document
from metricgate.discovery.targets import OnRefresh, SendGroups, TargetGroup, ignore_refresh

_JSON = re.compile(r'^application/json(;\s*charset=("utf-8"|utf-8))?$', re.IGNORECASE)


class HttpSDConfig(HttpClientConfig):
    """One `http_sd_configs` entry: `url`, `refresh_interval` (60s) and the HTTP client keys."""

    url: str
    refresh_interval: Interval = 60.0

    @field_validator("url")
    @classmethod
    def _url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"expected an http:// or https:// URL with a host, got {url!r}")
        return url


def seconds_text(seconds: float) -> str:
    """Seconds as Go's `FormatFloat(s, 'f', -1, 64)` writes them: `60`, `0.5`."""
    return f"{seconds:f}".rstrip("0").rstrip(".") or "0"


class HttpDiscoverer(PeriodicDiscoverer):
    """Polls one HTTP SD endpoint."""

    mechanism = "http"

    def __init__(
        self, config: HttpSDConfig, name: str = "http", on_refresh: OnRefresh = ignore_refresh
    ) -> None:
        super().__init__(name, config.refresh_interval, on_refresh, subject=config.url)
        self.config = config
        self.client = HttpClient(config)
        self.headers = {
            "Accept": "application/json",
            "X-Prometheus-Refresh-Interval-Seconds": seconds_text(config.refresh_interval),
        }

    async def refresh(self) -> list[TargetGroup]:
        if self.client.session is None:
            self.client.open()  # reads the TLS files: a missing one fails this refresh, not run()
        timeout = aiohttp.ClientTimeout(total=self.config.refresh_interval)
        async with self.client.get(
            self.config.url, headers=self.headers, timeout=timeout
        ) as response:
            if response.status != 200:
                raise ValueError(f"server returned HTTP status {response.status} {response.reason}")
            content_type = response.headers.get("Content-Type", "")
            if not _JSON.match(content_type.strip()):
                raise ValueError(f"unsupported content type {content_type!r}")
            body = await response.read()
        return groups_from_document(
            json.loads(body), f"{self.name}/{self.config.url}", {"__meta_url": self.config.url}
        )

    async def run(self, send: SendGroups) -> None:
        try:
            await super().run(send)
        finally:
            await self.client.close()
