"""The receiver's answers: `ExportMetricsServiceResponse` and `google.rpc.Status`, both encodings.

Invariant: a `Status` carries the gRPC code of the failure and, for retryable refusals, a
`google.rpc.RetryInfo` detail with the delay, so every OTLP SDK can back off as told.
"""

from __future__ import annotations

import json
import math
from typing import Any, Final

from metricgate.wire.otlp.schema import (
    RETRY_INFO_TYPE_URL,
    ExportMetricsServiceResponse,
    RetryInfo,
    Status,
)

CODES: Final = {
    name: number
    for number, name in enumerate(
        (
            "OK",
            "CANCELLED",
            "UNKNOWN",
            "INVALID_ARGUMENT",
            "DEADLINE_EXCEEDED",
            "NOT_FOUND",
            "ALREADY_EXISTS",
            "PERMISSION_DENIED",
            "RESOURCE_EXHAUSTED",
            "FAILED_PRECONDITION",
            "ABORTED",
            "OUT_OF_RANGE",
            "UNIMPLEMENTED",
            "INTERNAL",
            "UNAVAILABLE",
            "DATA_LOSS",
            "UNAUTHENTICATED",
        )
    )
}
"""`google.rpc.Code` by name (the `grpc_code` of an error class in `errors.py`)."""


def export_response(rejected: int, error_message: str, as_json: bool) -> bytes:
    """A success answer; `partial_success` only when points were rejected."""
    if as_json:
        document: dict[str, Any] = {}
        if rejected or error_message:
            document["partialSuccess"] = {
                "rejectedDataPoints": str(rejected),
                "errorMessage": error_message,
            }
        return json.dumps(document).encode()
    response = ExportMetricsServiceResponse()
    if rejected or error_message:
        response.partial_success.rejected_data_points = rejected
        response.partial_success.error_message = error_message
    body: bytes = response.SerializeToString()
    return body


def retry_info(retry_after: float) -> bytes:
    """A serialized `google.rpc.RetryInfo` asking to wait `retry_after` seconds."""
    delay = max(0.0, retry_after)
    seconds = math.floor(delay)
    info = RetryInfo()
    info.retry_delay.seconds = seconds
    info.retry_delay.nanos = round((delay - seconds) * 1e9) % 1_000_000_000
    body: bytes = info.SerializeToString()
    return body


def status(code: int, message: str, as_json: bool, retry_after: float | None = None) -> bytes:
    """A serialized `google.rpc.Status`, with a RetryInfo detail when `retry_after` is given."""
    if as_json:
        document: dict[str, Any] = {"code": code, "message": message}
        if retry_after is not None:
            document["details"] = [
                {"@type": RETRY_INFO_TYPE_URL, "retryDelay": _json_duration(retry_after)}
            ]
        return json.dumps(document).encode()
    found = Status(code=code, message=message)
    if retry_after is not None:
        found.details.add(type_url=RETRY_INFO_TYPE_URL, value=retry_info(retry_after))
    body: bytes = found.SerializeToString()
    return body


def _json_duration(seconds: float) -> str:
    """`google.protobuf.Duration` in its JSON form: `1s`, `0.250s`."""
    text = f"{max(0.0, seconds):.9f}".rstrip("0").rstrip(".")
    return f"{text}s"
