"""The remote-write HTTP listener: `POST <path>`, snappy-compressed protobuf, on aiohttp.

Checks run cheapest first: method (405, `Allow: POST`), `Content-Type` (415: 1.0 is
`application/x-protobuf`, optionally `;proto=prometheus.WriteRequest`, and an absent type is
taken as 1.0; 2.0 is `application/x-protobuf;proto=io.prometheus.write.v2.Request`; a 415 tells a
2.0 sender to fall back to 1.0), `Content-Encoding` (415 unless `snappy` or absent), declared
`Content-Length` (413), the memory limiter (429 + `Retry-After`), then the body is read with a cap
(413), checked for the framed snappy format (400: remote-write uses the block format), its
declared decompressed length checked (413) and decompressed (corrupt: 400), decoded (400) and
consumed (pipeline back-pressure: 429 for full queues and memory, 503 when unavailable, both with
`Retry-After`; a permanent refusal 400; a bug 500). Success is 204. When some series are invalid,
the valid ones are delivered first and the answer is 400 naming the first invalid series (what
Prometheus does: the sender drops the batch, the valid part is already written). 2.0 answers
carry `X-Prometheus-Remote-Write-{Samples,Histograms,Exemplars}-Written`.

Invariant: no request makes the server hold more than `max_request_body_size` bytes of body plus
`max_decompressed_size` bytes of decompressed data.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Final

import cramjam
from aiohttp import ClientError, web

from metricgate.errors import MemoryLimitError, PermanentError, RetryableError
from metricgate.pipeline.component import Consumer
from metricgate.pipeline.host import Host
from metricgate.receivers.listener import RETRYABLE_STATUS, HttpListener, Refused
from metricgate.receivers.prometheus_remote_write.config import RemoteWriteReceiverConfig
from metricgate.receivers.prometheus_remote_write.decode import RemoteWriteDecoder
from metricgate.receivers.prometheus_remote_write.result import DecodeError, DecodeResult
from metricgate.remotewrite.schema import V2_CONTENT_TYPE

log = logging.getLogger("metricgate.receivers.prometheus_remote_write")

TRANSPORT: Final = "http"
_SNAPPY_STREAM: Final = b"\xff\x06\x00\x00sNaPpY"
_V1_PROTOS: Final = ("", "prometheus.WriteRequest")
_V2_PROTO: Final = "io.prometheus.write.v2.Request"
_WARN_EVERY_S: Final = 10.0


class RemoteWriteServer:
    """The HTTP listener of one `prometheus_remote_write` receiver."""

    def __init__(
        self,
        receiver_id: str,
        config: RemoteWriteReceiverConfig,
        consumer: Consumer,
        host: Host,
        decoder: RemoteWriteDecoder,
    ) -> None:
        self.receiver_id = receiver_id
        self.config = config
        self.consumer = consumer
        self.host = host
        self.decoder = decoder
        self.port: int | None = None
        self._listener = HttpListener(
            "prometheus_remote_write", config.endpoint, config.max_request_body_size
        )
        self._warned: dict[str, float] = {}
        telemetry = host.telemetry
        self._accepted = telemetry.receiver_accepted.labels(receiver_id, TRANSPORT)
        self._refused = telemetry.receiver_refused
        self._requests = telemetry.receiver_requests

    async def start(self) -> int:
        """Bind and serve; return the port (useful with port 0)."""
        self.port = await self._listener.start(self.config.path, self._serve)
        return self.port

    async def stop(self) -> None:
        await self._listener.stop()

    async def _serve(self, request: web.Request) -> web.Response:
        headers: dict[str, str] = {}
        try:
            result, v2 = await self._write(request)
        except Refused as refused:
            return self._answer_refusal(refused, request)
        if v2:
            headers = {
                "X-Prometheus-Remote-Write-Samples-Written": str(result.samples),
                "X-Prometheus-Remote-Write-Histograms-Written": "0",
                "X-Prometheus-Remote-Write-Exemplars-Written": "0",
            }
        if result.invalid_series:
            message = result.error_message()
            self._count_refused("invalid_series", result.rejected, request, message)
            self._requests.labels(self.receiver_id, TRANSPORT, "400").inc()
            return web.Response(status=400, text=message + "\n", headers=headers)
        self._requests.labels(self.receiver_id, TRANSPORT, "204").inc()
        return web.Response(status=204, headers=headers)

    async def _write(self, request: web.Request) -> tuple[DecodeResult, bool]:
        if request.method != "POST":
            raise Refused(405, "unsupported", f"method {request.method} not allowed, use POST")
        v2 = _is_v2(request.headers.get("Content-Type", ""))
        encoding = request.headers.get("Content-Encoding", "").strip().lower()
        if encoding not in ("", "snappy"):
            raise Refused(
                415, "unsupported", f"unsupported Content-Encoding {encoding!r}; use snappy"
            )
        limit = self.config.max_request_body_size
        length = request.content_length
        if length is not None and length > limit:
            raise Refused(413, "too_large", f"body of {length} bytes is over the {limit} limit")
        try:
            self.host.memory.check()
        except MemoryLimitError as exc:
            raise Refused(429, exc.reason, str(exc), exc.retry_after) from None
        wire = await self._read(request, limit)
        body = self._decompress(wire)
        del wire
        try:
            result = self.decoder.decode_v2(body) if v2 else self.decoder.decode_v1(body)
        except DecodeError as exc:
            raise Refused(400, "malformed", str(exc)) from None
        if result.histograms:
            self._count_refused(
                "native_histogram",
                result.histograms,
                request,
                f"{result.histograms} native histogram samples dropped: not supported yet",
            )
        await self._consume(result)
        return result, v2

    async def _read(self, request: web.Request, limit: int) -> bytes:
        chunks: list[bytes] = []
        total = 0
        try:
            async for chunk in request.content.iter_any():
                total += len(chunk)
                if total > limit:
                    raise Refused(413, "too_large", f"body is over the {limit} byte limit")
                chunks.append(chunk)
        except (ClientError, ConnectionError) as exc:
            raise Refused(400, "malformed", f"body could not be read: {exc}") from None
        return b"".join(chunks)

    def _decompress(self, wire: bytes) -> bytes:
        if wire.startswith(_SNAPPY_STREAM):
            raise Refused(
                400,
                "malformed",
                "body uses the framed snappy format; remote-write requires the snappy block "
                "format (snappy.Encode, not a snappy stream writer)",
            )
        limit = self.config.max_decompressed_size
        try:
            declared = cramjam.snappy.decompress_raw_len(wire)
            if declared > limit:
                raise Refused(
                    413, "too_large", f"snappy block declares {declared} bytes, over {limit}"
                )
            return bytes(cramjam.snappy.decompress_raw(wire))
        except cramjam.DecompressionError as exc:
            raise Refused(400, "malformed", f"invalid snappy block body: {exc}") from None

    async def _consume(self, result: DecodeResult) -> None:
        batch = result.batch
        points = batch.point_count()
        if not points:
            return
        try:
            await self.consumer.consume(batch)
        except RetryableError as exc:
            status = RETRYABLE_STATUS.get(exc.reason, 503)
            raise Refused(status, exc.reason, str(exc), exc.retry_after, points) from None
        except PermanentError as exc:
            raise Refused(400, "permanent", str(exc), None, points) from None
        except Exception as exc:
            log.exception(
                "prometheus_remote_write receiver: consumer failed unexpectedly",
                extra={"receiver": self.receiver_id},
            )
            raise Refused(500, "internal", repr(exc), None, points) from None
        self._accepted.inc(points)

    def _answer_refusal(self, refused: Refused, request: web.Request) -> web.Response:
        headers: dict[str, str] = {}
        if refused.retry_after is not None and refused.status in (429, 503):
            headers["Retry-After"] = str(max(1, math.ceil(refused.retry_after)))
        if refused.status == 405:
            headers["Allow"] = "POST"
        elif refused.status == 415:
            headers["Accept-Encoding"] = "snappy"
        self._count_refused(refused.reason, refused.points, request, refused.message)
        self._requests.labels(self.receiver_id, TRANSPORT, str(refused.status)).inc()
        return web.Response(status=refused.status, text=refused.message + "\n", headers=headers)

    def _count_refused(self, reason: str, points: int, request: web.Request, message: str) -> None:
        if points:
            self._refused.labels(self.receiver_id, TRANSPORT, reason).inc(points)
        # A misbehaving sender retries every few milliseconds: one warning per reason every
        # few seconds, the rest at debug level (the counters have every one).
        now = time.monotonic()
        level = logging.DEBUG
        if now - self._warned.get(reason, -_WARN_EVERY_S) >= _WARN_EVERY_S:
            self._warned[reason] = now
            level = logging.WARNING
        log.log(
            level,
            "prometheus_remote_write request refused: %s",
            message,
            extra={"receiver": self.receiver_id, "peer": request.remote, "reason": reason},
        )


def _is_v2(header: str) -> bool:
    """Which protocol `Content-Type` asks for; raise a 415 refusal for anything else."""
    media, _, parameters = header.partition(";")
    media = media.strip().lower()
    proto = ""
    for parameter in parameters.split(";"):
        key, _, value = parameter.partition("=")
        if key.strip().lower() == "proto":
            proto = value.strip().strip('"')
    if media in ("", "application/x-protobuf"):
        if proto == _V2_PROTO:
            return True
        if proto in _V1_PROTOS:
            return False
    raise Refused(
        415,
        "unsupported",
        f"unsupported Content-Type {header!r}; use application/x-protobuf (1.0) or "
        f"{V2_CONTENT_TYPE} (2.0)",
    )
