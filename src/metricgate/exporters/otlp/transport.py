"""The two ways an encoded request leaves: OTLP/HTTP (aiohttp) and OTLP/gRPC (grpc.aio).

A transport opens its session or channel in `open()`, sends one serialized
`ExportMetricsServiceRequest` per `send()`, and closes in `close()`. Failures surface as
`RetryableError` or `PermanentError` (see `status.py`); network errors and timeouts are retryable.

Invariant: `send()` makes exactly one attempt; retrying is the sending queue's job.
"""

from __future__ import annotations

import asyncio
import gzip
import ssl
from typing import Final, Protocol

import aiohttp
import grpc
from grpc import aio

from metricgate.errors import RetryableError
from metricgate.exporters.otlp import status
from metricgate.exporters.otlp.config import OtlpExporterConfig

METHOD: Final = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"
_GZIP_LEVEL: Final = 6
_INLINE_GZIP_BYTES: Final = 256 * 1024


class Transport(Protocol):
    """One connection to the backend."""

    async def open(self) -> None: ...

    async def send(self, body: bytes, tenant: str = "") -> bytes:
        """Send one request (for `tenant`, in the `tenant_header`); the response body on
        success."""
        ...

    async def close(self) -> None: ...


def _read(path: str) -> bytes:
    with open(path, "rb") as file:
        return file.read()


class HttpTransport:
    """`POST` protobuf to `config.url`, gzip-compressed unless `compression: none`."""

    def __init__(self, config: OtlpExporterConfig) -> None:
        self.config = config
        self.url = config.url
        self._session: aiohttp.ClientSession | None = None
        self._headers = {
            **config.headers,
            "Content-Type": "application/x-protobuf",
        }
        if config.compression == "gzip":
            self._headers["Content-Encoding"] = "gzip"
        self._tenant_header = config.tenant_header.name if config.tenant_header else ""

    async def open(self) -> None:
        ssl_option: ssl.SSLContext | bool = (
            self.config.tls.ssl_context() if self.url.startswith("https://") else False
        )
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=ssl_option),
            timeout=aiohttp.ClientTimeout(total=self.config.timeout),
        )

    async def send(self, body: bytes, tenant: str = "") -> bytes:
        if self._session is None:
            await self.open()
        assert self._session is not None
        headers = self._headers
        if tenant and self._tenant_header:
            headers = {**headers, self._tenant_header: tenant}
        if self.config.compression == "gzip":
            if len(body) > _INLINE_GZIP_BYTES:  # keep the event loop responsive
                body = await asyncio.to_thread(gzip.compress, body, _GZIP_LEVEL)
            else:
                body = gzip.compress(body, _GZIP_LEVEL)
        try:
            async with self._session.post(self.url, data=body, headers=headers) as response:
                answer = await response.read()
                if 200 <= response.status < 300:
                    return answer
                raise status.http_error(
                    response.status, answer, response.headers.get("Retry-After")
                )
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise RetryableError(f"POST {self.url}: {type(exc).__name__}: {exc}", 0.0) from exc

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()


class GrpcTransport:
    """Unary `MetricsService/Export` calls on one grpc.aio channel."""

    def __init__(self, config: OtlpExporterConfig) -> None:
        self.config = config
        self._channel: aio.Channel | None = None
        self._call: aio.UnaryUnaryMultiCallable[bytes, bytes] | None = None
        self._metadata = tuple((k.lower(), v) for k, v in config.headers.items())
        self._tenant_key = config.tenant_header.name.lower() if config.tenant_header else ""

    async def open(self) -> None:
        config = self.config
        compression = grpc.Compression.Gzip if config.compression == "gzip" else None
        if config.secure:
            tls = config.tls
            credentials = grpc.ssl_channel_credentials(
                root_certificates=_read(tls.ca_file) if tls.ca_file else None,
                private_key=_read(tls.key_file) if tls.key_file else None,
                certificate_chain=_read(tls.cert_file) if tls.cert_file else None,
            )
            channel = aio.secure_channel(config.grpc_target, credentials, compression=compression)
        else:
            channel = aio.insecure_channel(config.grpc_target, compression=compression)
        self._channel = channel
        self._call = channel.unary_unary(
            METHOD, request_serializer=None, response_deserializer=None
        )

    async def send(self, body: bytes, tenant: str = "") -> bytes:
        if self._call is None:
            await self.open()
        assert self._call is not None
        metadata = self._metadata
        if tenant and self._tenant_key:
            metadata = (*metadata, (self._tenant_key, tenant))
        try:
            answer: bytes = await self._call(body, timeout=self.config.timeout, metadata=metadata)
        except aio.AioRpcError as exc:
            trailing = exc.trailing_metadata() or ()
            raise status.grpc_error(exc.code(), exc.details() or "", tuple(trailing)) from exc
        except asyncio.CancelledError:
            raise
        return answer

    async def close(self) -> None:
        channel, self._channel = self._channel, None
        self._call = None
        if channel is not None:
            await channel.close()
