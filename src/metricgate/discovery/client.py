"""The HTTP client of the HTTP-based mechanisms (http_sd, kubernetes_sd), from Prometheus' keys.

One `HttpClient` per discoverer: an aiohttp session whose TLS settings come from `tls_config`
(files read when the client opens), and per-request headers whose `Authorization` is built from
`basic_auth` / `authorization` / `bearer_token[_file]` on every request, so a rotated credential
file (a Kubernetes service-account token) takes effect without a restart.

Invariant: the session lives between `open()` and `close()`, both on the discoverer's own task.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp

from metricgate import __version__
from metricgate.config.http_client import HttpClientConfig

USER_AGENT = f"metricgate/{__version__}"


class HttpClient:
    """Requests shaped by one `http_client_config` (auth, TLS, redirects)."""

    def __init__(self, config: HttpClientConfig) -> None:
        self.config = config
        self.session: aiohttp.ClientSession | None = None

    def open(self) -> aiohttp.ClientSession:
        """Start the session (reads the TLS files); `close()` ends it."""
        context = self.config.tls_config.ssl_context()
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=context),
            headers={"User-Agent": USER_AGENT},
        )
        return self.session

    async def close(self) -> None:
        session, self.session = self.session, None
        if session is not None:
            await session.close()

    @asynccontextmanager
    async def get(
        self,
        url: str,
        *,
        timeout: aiohttp.ClientTimeout,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """GET `url` with the configured credentials (`async with client.get(url) as response`)."""
        if self.session is None:
            raise RuntimeError("HttpClient.open() was not called")
        all_headers = dict(headers or {})
        authorization = self.config.authorization_header()
        if authorization is not None:
            all_headers["Authorization"] = authorization
        async with self.session.get(
            url,
            params=params,
            headers=all_headers,
            timeout=timeout,
            allow_redirects=self.config.follow_redirects,
            server_hostname=self.config.tls_config.server_name or None,
        ) as response:
            yield response
