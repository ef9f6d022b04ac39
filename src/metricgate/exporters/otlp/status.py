"""What a backend's answer means for the batch: sent, retry (and when), or drop.

Follows the Collector's `otlp` and `otlphttp` exporters. HTTP: 429, 502, 503 and 504 are
retryable, honouring `Retry-After` (seconds or an HTTP date, read by the core's
`retry_after_seconds`); every other non-2xx is permanent.
gRPC: CANCELLED, DEADLINE_EXCEEDED, ABORTED, OUT_OF_RANGE, UNAVAILABLE and DATA_LOSS are
retryable; RESOURCE_EXHAUSTED only when the server sent a `google.rpc.RetryInfo` (otherwise it
is a hard limit such as message size); the rest is permanent. A RetryInfo delay becomes the
error's `retry_after`. A success whose `partial_success` rejected points is a partial refusal
(`rejected_points` says how many); one with only an error message is logged as a warning. The
backend's `google.rpc.Status` and `RetryInfo` are read by `metricgate.wire.otlp.status`.

Invariant: these functions only classify; they never sleep or retry (the queue does).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Final

import grpc

from metricgate.errors import PermanentError, RetryableError
from metricgate.pipeline.retry import retry_after_seconds
from metricgate.wire.otlp.status import partial_success, retry_info_delay, status_message

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
    rejected, message = partial_success(body)
    if not rejected and message:
        log.warning(
            "backend accepted an export with a warning",
            extra={"exporter": exporter, "error": message},
        )
    return rejected, message
