"""One remote-write HTTP request and what its answer means.

`Client.send(body, v2)` POSTs a snappy-compressed 1.0 `WriteRequest` or 2.0 `Request` with that
protocol's headers and classifies the outcome by the specification: 2xx delivered (with 2.0, the
receiver's `X-Prometheus-Remote-Write-Samples-Written` count kept); 5xx, 429 (honouring
`Retry-After`, seconds or HTTP-date, read by the core's `retry_after_seconds`), connection errors
and timeouts retryable; any other status permanent (the backend's body is kept for the log). It
never raises for an HTTP or network failure; `Outcome.error()` is the error the sending core
acts on. `Client.v2` is which protocol the exporter speaks now: set from `protobuf_message`,
cleared for good by `fall_back` after a 415.

With `tenant_header`, each request carries the tenant its body is for (all of its series are that
tenant's: the lanes never join two tenants' pieces).

Invariant: user headers never replace the protocol's (the config refuses them, and the protocol
headers are applied last anyway).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from metricgate import __version__
from metricgate.errors import PermanentError, RetryableError
from metricgate.exporters.prometheus_remote_write.config import (
    PROTOBUF_MESSAGE_V2,
    RemoteWriteExporterConfig,
)
from metricgate.pipeline.retry import retry_after_seconds
from metricgate.wire.remotewrite.schema import V2_CONTENT_TYPE

_BODY_LOG_LIMIT = 1024


@dataclass(frozen=True, slots=True)
class Outcome:
    """The answer to one request: `status` 0 means no HTTP answer (network error, timeout)."""

    status: int
    retryable: bool
    retry_after: float = 0.0
    message: str = ""
    samples_written: int | None = None
    """What a 2.0 receiver said it wrote (`X-Prometheus-Remote-Write-Samples-Written`)."""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def error(self) -> RetryableError | PermanentError:
        """The error a failed outcome means for the sending core."""
        message = self.message
        if self.status:
            message = f"HTTP {self.status}: {message}" if message else f"HTTP {self.status}"
        if self.retryable:
            return RetryableError(message, self.retry_after)
        return PermanentError(message)


class Client:
    """Sends request bodies to one endpoint over a shared connection pool."""

    def __init__(self, config: RemoteWriteExporterConfig) -> None:
        self.config = config
        self._session: aiohttp.ClientSession | None = None
        self._tenant_header = config.tenant_header.name if config.tenant_header else ""
        self.v2 = config.protobuf_message == PROTOBUF_MESSAGE_V2
        """Send 2.0 requests; False from the start with 1.0, or after `fall_back`."""
        common = {
            **config.headers,
            "Content-Encoding": "snappy",
            "User-Agent": f"metricgate/{__version__}",
        }
        self._headers = {
            **common,
            "Content-Type": "application/x-protobuf",
            "X-Prometheus-Remote-Write-Version": "0.1.0",
        }
        self._headers_v2 = {
            **common,
            "Content-Type": V2_CONTENT_TYPE,
            "X-Prometheus-Remote-Write-Version": "2.0.0",
        }

    @property
    def protocol(self) -> str:
        """`"2.0"` or `"1.0"`: what the next request is sent with."""
        return "2.0" if self.v2 else "1.0"

    def fall_back(self) -> bool:
        """Speak 1.0 from now on (the receiver refused 2.0); True if this call switched."""
        switched, self.v2 = self.v2, False
        return switched

    async def start(self) -> None:
        context = (
            self.config.tls.ssl_context() if self.config.endpoint.startswith("https:") else None
        )
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

    def _request_headers(self, v2: bool) -> dict[str, str]:
        config = self.config
        headers = self._headers_v2 if v2 else self._headers
        token = config.bearer_token
        if config.bearer_token_file:
            token = Path(config.bearer_token_file).read_text().strip()
        if token:
            return {**headers, "Authorization": f"Bearer {token}"}
        auth = config.basic_auth
        if auth is not None:
            password = auth.password
            if auth.password_file:
                password = Path(auth.password_file).read_text().strip()
            raw = f"{auth.username}:{password}".encode()
            return {**headers, "Authorization": f"Basic {base64.b64encode(raw).decode()}"}
        return headers

    async def send(self, body: bytes, v2: bool = False, tenant: str = "") -> Outcome:
        """POST `body` (compressed; 2.0 if `v2`) for `tenant` (in the `tenant_header`; none if
        empty) and classify the answer (see module docstring)."""
        assert self._session is not None, "Client.start() was not awaited"
        try:
            headers = self._request_headers(v2)
        except OSError as exc:
            return Outcome(0, True, message=f"reading credentials: {exc}")
        if tenant and self._tenant_header:
            headers = {**headers, self._tenant_header: tenant}
        try:
            async with self._session.post(
                self.config.endpoint, data=body, headers=headers
            ) as response:
                status = response.status
                if 200 <= status < 300:
                    await response.read()
                    written = response.headers.get("X-Prometheus-Remote-Write-Samples-Written")
                    return Outcome(status, False, samples_written=_count(written))
                text = (await response.text(errors="replace"))[:_BODY_LOG_LIMIT]
                retry_after = retry_after_seconds(response.headers.get("Retry-After"))
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return Outcome(0, True, message=f"{type(exc).__name__}: {exc}")
        retryable = status >= 500 or status == 429
        return Outcome(status, retryable, retry_after, text.strip())


def _count(header: str | None) -> int | None:
    if header is None:
        return None
    try:
        return int(header.strip())
    except ValueError:
        return None
