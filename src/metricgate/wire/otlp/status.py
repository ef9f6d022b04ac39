"""What an OTLP backend says besides the data: `google.rpc.Status` (an HTTP error body, gRPC's
`grpc-status-details-bin` trailer), its `RetryInfo` detail and a success's `partial_success`.

All three are read with the messages of `schema.py`, which declares `google.rpc.Status`,
`RetryInfo` and `ExportMetricsServiceResponse` itself, so no generated googleapis code is needed.

Invariant: these readers never raise on any bytes; what does not parse reads as absent.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from google.protobuf.message import DecodeError

from metricgate.wire.otlp.schema import (
    RETRY_INFO_TYPE_URL,
    ExportMetricsServiceResponse,
    RetryInfo,
    Status,
)

STATUS_DETAILS_KEY: Final = "grpc-status-details-bin"
"""The gRPC trailing metadata key holding a serialized `google.rpc.Status`."""
_RETRY_INFO: Final = RETRY_INFO_TYPE_URL.rsplit("/", 1)[-1]


def status_message(body: bytes) -> str:
    """The message of a `google.rpc.Status` body, or the body's start as text."""
    try:
        message: str = Status.FromString(body).message
    except DecodeError:
        message = ""
    return message or body[:200].decode("utf-8", "replace").strip()


def retry_info_delay(metadata: Iterable[tuple[str, str | bytes]]) -> float | None:
    """The `RetryInfo` delay (seconds) of the `google.rpc.Status` in gRPC trailing metadata."""
    for key, value in metadata:
        if key != STATUS_DETAILS_KEY or not isinstance(value, bytes):
            continue
        try:
            status: Any = Status.FromString(value)
            for detail in status.details:
                if detail.type_url.rsplit("/", 1)[-1] == _RETRY_INFO:
                    delay = RetryInfo.FromString(detail.value).retry_delay
                    seconds: float = delay.seconds + delay.nanos / 1e9
                    return max(0.0, seconds)
        except DecodeError:
            return None
    return None


def partial_success(body: bytes) -> tuple[int, str]:
    """(rejected data points, error message) of an `ExportMetricsServiceResponse` body;
    (0, "") for a body that does not parse."""
    try:
        partial = ExportMetricsServiceResponse.FromString(body).partial_success
    except DecodeError:
        return 0, ""
    return int(partial.rejected_data_points), str(partial.error_message)
