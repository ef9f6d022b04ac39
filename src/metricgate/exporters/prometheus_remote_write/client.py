"""One remote-write HTTP request and what its answer means.

`Client.send(body)` POSTs a snappy-compressed `WriteRequest` and classifies the outcome by the
specification: 2xx delivered; 5xx, 429 (honouring `Retry-After`, seconds or HTTP-date), connection
errors and timeouts retryable; any other status permanent (the backend's body is kept for the
log). It never raises for an HTTP or network failure.

Invariant: user headers never replace the protocol's (the config refuses them, and the protocol
headers are applied last anyway).
"""

from __future__ import annotations

import base64
import ssl
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path

import aiohttp

from metricgate import __version__
from metricgate.exporters.prometheus_remote_write.config import RemoteWriteExporterConfig

_BODY_LOG_LIMIT = 1024


@dataclass(frozen=True, slots=True)
class Outcome:
    """The answer to one request: `status` 0 means no HTTP answer (network error, timeout)."""

    status: int
    retryable: bool
    retry_after: float = 0.0
    message: str = ""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def retry_after_seconds(header: str | None, now: float | None = None) -> float:
    """`Retry-After` as seconds from now: a number or an HTTP-date; 0 when absent or unreadable."""
    if not header:
        return 0.0
    text = header.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text).timestamp()
    except (TypeError, ValueError, IndexError):
        return 0.0
    return max(0.0, when - (time.time() if now is None else now))


def ssl_context(config: RemoteWriteExporterConfig) -> ssl.SSLContext | None:
    """The TLS context for an https endpoint (None for plain http)."""
    if not config.endpoint.startswith("https:"):
        return None
    tls = config.tls
    context = ssl.create_default_context(cafile=tls.ca_file or None)
    if tls.cert_file:
        context.load_cert_chain(tls.cert_file, tls.key_file)
    if tls.insecure_skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class Client:
    """Sends request bodies to one endpoint over a shared connection pool."""

    def __init__(self, config: RemoteWriteExporterConfig) -> None:
        self.config = config
        self._session: aiohttp.ClientSession | None = None
        self._headers = {
            **config.headers,
            "Content-Encoding": "snappy",
            "Content-Type": "application/x-protobuf",
            "X-Prometheus-Remote-Write-Version": "0.1.0",
            "User-Agent": f"metricgate/{__version__}",
        }

    async def start(self) -> None:
        context = ssl_context(self.config)
        connector = aiohttp.TCPConnector(
            ssl=context if context is not None else True, limit=self.config.shards.max + 2
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=self.config.timeout),
            skip_auto_headers=("Accept-Encoding",),
        )

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    def _request_headers(self) -> dict[str, str]:
        config = self.config
        token = config.bearer_token
        if config.bearer_token_file:
            token = Path(config.bearer_token_file).read_text().strip()
        if token:
            return {**self._headers, "Authorization": f"Bearer {token}"}
        auth = config.basic_auth
        if auth is not None:
            password = auth.password
            if auth.password_file:
                password = Path(auth.password_file).read_text().strip()
            raw = f"{auth.username}:{password}".encode()
            return {**self._headers, "Authorization": f"Basic {base64.b64encode(raw).decode()}"}
        return self._headers

    async def send(self, body: bytes) -> Outcome:
        """POST `body` (already compressed) and classify the answer (see module docstring)."""
        assert self._session is not None, "Client.start() was not awaited"
        try:
            headers = self._request_headers()
        except OSError as exc:
            return Outcome(0, True, message=f"reading credentials: {exc}")
        try:
            async with self._session.post(
                self.config.endpoint, data=body, headers=headers
            ) as response:
                status = response.status
                if 200 <= status < 300:
                    await response.read()
                    return Outcome(status, False)
                text = (await response.text(errors="replace"))[:_BODY_LOG_LIMIT]
                retry_after = retry_after_seconds(response.headers.get("Retry-After"))
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return Outcome(0, True, message=f"{type(exc).__name__}: {exc}")
        retryable = status >= 500 or status == 429
        return Outcome(status, retryable, retry_after, text.strip())
