"""What a backend's answer means for the batch: sent, retry (and when), or drop.

Follows the Collector's `otlp` and `otlphttp` exporters. HTTP: 429, 502, 503 and 504 are
retryable, honouring `Retry-After` (seconds or an HTTP date, read by the core's
`retry_after_seconds`); every other non-2xx is permanent.
gRPC: CANCELLED, DEADLINE_EXCEEDED, ABORTED, OUT_OF_RANGE, UNAVAILABLE and DATA_LOSS are
retryable; RESOURCE_EXHAUSTED only when the server sent a `google.rpc.RetryInfo` (otherwise it
is a hard limit such as message size); the rest is permanent. A RetryInfo delay becomes the
error's `retry_after`. A success whose `partial_success` rejected points is a partial refusal
(`rejected_points` says how many); one with only an error message is logged as a warning.

Invariant: these functions only classify; they never sleep or retry (the queue does).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Final

import grpc
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceResponse,
)

from metricgate.errors import PermanentError, RetryableError
from metricgate.pipeline.retry import retry_after_seconds

log = logging.getLogger("metricgate.exporters.otlp")

RETRYABLE_HTTP: Final = frozenset({429, 502, 503, 504})
RETRYABLE_GRPC: Final = frozenset(
    {
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)
_RETRY_INFO: Final = "google.rpc.RetryInfo"


def _fields(raw: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, varint or bytes) of a protobuf message; fixed-width fields skipped.

    `google.rpc.Status` and `RetryInfo` are read by hand: their generated classes live in
    googleapis-common-protos, which metricgate does not otherwise need. Raises ValueError.
    """
    at, size = 0, len(raw)

    def varint() -> int:
        nonlocal at
        value = shift = 0
        while True:
            if at >= size or shift > 63:
                raise ValueError("truncated varint")
            byte = raw[at]
            at += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return value

    while at < size:
        key = varint()
        number, wire = key >> 3, key & 7
        if wire == 0:
            yield number, varint()
        elif wire == 2:
            length = varint()
            if at + length > size:
                raise ValueError("truncated field")
            yield number, raw[at : at + length]
            at += length
        elif wire in (1, 5):
            at += 8 if wire == 1 else 4
        else:
            raise ValueError(f"unsupported wire type {wire}")


def _status(body: bytes) -> tuple[str, list[tuple[str, bytes]]]:
    """(message, [(detail type URL, detail value)]) of a `google.rpc.Status`."""
    message = ""
    details: list[tuple[str, bytes]] = []
    for number, value in _fields(body):
        if number == 2 and isinstance(value, bytes):
            message = value.decode("utf-8", "replace")
        elif number == 3 and isinstance(value, bytes):
            parts = {n: v for n, v in _fields(value) if isinstance(v, bytes)}
            details.append((parts.get(1, b"").decode("utf-8", "replace"), parts.get(2, b"")))
    return message, details


def _retry_delay(info: bytes) -> float:
    """The delay of a `google.rpc.RetryInfo`, in seconds."""
    seconds = nanos = 0
    for number, value in _fields(info):
        if number == 1 and isinstance(value, bytes):
            for inner, part in _fields(value):
                if inner == 1 and isinstance(part, int):
                    seconds = part
                elif inner == 2 and isinstance(part, int):
                    nanos = part
    return max(0.0, seconds + nanos / 1e9)


def status_message(body: bytes) -> str:
    """The message of a `google.rpc.Status` body, or the body's start as text."""
    try:
        message = _status(body)[0]
        if message:
            return message
    except (ValueError, UnicodeDecodeError):
        pass
    return body[:200].decode("utf-8", "replace").strip()


def retry_info_delay(details: Iterable[tuple[str, str | bytes]]) -> float | None:
    """The RetryInfo delay in gRPC trailing metadata (`grpc-status-details-bin`), if any."""
    for key, value in details:
        if key != "grpc-status-details-bin" or not isinstance(value, bytes):
            continue
        try:
            for type_url, detail in _status(value)[1]:
                if type_url.rsplit("/", 1)[-1] == _RETRY_INFO:
                    return _retry_delay(detail)
        except ValueError:
            return None
    return None


def http_error(status: int, body: bytes, retry_after: str | None) -> Exception:
    """The error for a non-2xx HTTP answer."""
    message = f"HTTP {status}: {status_message(body)}"
    if status in RETRYABLE_HTTP:
        return RetryableError(message, retry_after_seconds(retry_after))
    return PermanentError(message)


def grpc_error(
    code: grpc.StatusCode, details: str, metadata: Iterable[tuple[str, str | bytes]]
) -> Exception:
    """The error for a failed gRPC call."""
    message = f"gRPC {code.name}: {details}"
    delay = retry_info_delay(metadata)
    if code in RETRYABLE_GRPC:
        return RetryableError(message, delay or 0.0)
    if code is grpc.StatusCode.RESOURCE_EXHAUSTED and delay is not None:
        return RetryableError(message, delay)
    return PermanentError(message)


def rejected_points(body: bytes, exporter: str) -> tuple[int, str]:
    """(points the backend rejected, its message) from a success's `partial_success`; a message
    without rejected points is only a warning, logged here."""
    try:
        response = ExportMetricsServiceResponse.FromString(body)
    except DecodeError:
        return 0, ""
    partial = response.partial_success
    rejected = int(partial.rejected_data_points)
    if not rejected and partial.error_message:
        log.warning(
            "backend accepted an export with a warning",
            extra={"exporter": exporter, "error": partial.error_message},
        )
    return rejected, partial.error_message
