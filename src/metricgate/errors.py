"""The exception hierarchy, in one place.

    MetricgateError
    ├── ConfigError                 bad configuration; names the key path and what was expected
    ├── AccessError                 a request's credentials or rights are refused
    │   ├── Unauthenticated         missing, invalid or expired credentials (HTTP 401 with
    │   │                           `WWW-Authenticate`, gRPC UNAUTHENTICATED)
    │   └── PermissionDenied        valid credentials without the right (HTTP 403,
    │                               PERMISSION_DENIED)
    ├── RecordIntegrityError        a record encrypted at rest cannot be opened (altered, truncated,
    │   │                           another key's); it is skipped and counted, never replayed
    │   └── UnknownKeyError         its segment names a key id no configured key file has
    ├── TelemetryConflictError      an own metric registered again as something else (another
    │                               kind, help, labels or buckets); a bug in the component
    └── ConsumeError                a component could not take a batch; a bug (500, INTERNAL)
        ├── PermanentError          the data itself is bad: drop it, tell the client (HTTP 400,
        │   │                       gRPC INVALID_ARGUMENT); retrying cannot help
        │   ├── MalformedError      a request that cannot be read or decoded (400)
        │   ├── TooLargeError       a body over a size limit (413, RESOURCE_EXHAUSTED)
        │   ├── RequestTimeoutError a body not received within `read_timeout` (408)
        │   └── UnsupportedError    a media type or content coding not served (415)
        │       └── MethodNotAllowedError                   (405, UNIMPLEMENTED)
        └── RetryableError          a transient condition: the client should retry later
            ├── PartialExportError  an export delivered part of a batch: retry only `remaining`
            ├── QueueFullError      an exporter queue is full (HTTP 429, RESOURCE_EXHAUSTED)
            ├── MemoryLimitError    the memory limiter refuses data (HTTP 429, RESOURCE_EXHAUSTED)
            ├── UnavailableError    shutting down or a backend is down (HTTP 503, UNAVAILABLE)
            ├── RateLimitError      a tenant's ingestion rate, or a client address's failed
            │   │                   logins, are over their limit (HTTP 429, RESOURCE_EXHAUSTED)
            │   └── ConcurrencyLimitError  a tenant holds its limit of connections or gRPC
            │                       streams on a listener (429, the connection closed)
            └── InFlightLimitError  receivers hold too many request bytes (HTTP 503, UNAVAILABLE)

Each `ConsumeError` and `AccessError` class carries its answer: `reason` (the `reason` label of
refused-point counters), `http_status` and `grpc_code` (a `grpc.StatusCode` name;
`google.rpc.Code` in OTLP/HTTP error bodies). Receivers answer from these attributes alone, so a
new refusal is one new class. `retry_after` (seconds) becomes a `Retry-After` header or a gRPC
RetryInfo detail; an `Unauthenticated`'s `challenge` a `WWW-Authenticate` header.

Exporters tell the sending core how much of a batch reached the backend: `export()` returns the
points delivered (None: all), `PermanentError(refused=, delivered=)` says part of a batch was
refused for good, and `PartialExportError` carries what is still owed (the Collector's
`consumererror` with its remaining data), so only that is retried.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from metricgate.model import Batch


def describe(error: BaseException) -> str:
    """An error as a log line shows it: its message, with its type when the message is empty or
    says little alone (a timeout)."""
    text = str(error)
    if isinstance(error, TimeoutError) or not text:
        return f"{type(error).__name__}{': ' + text if text else ''}"
    return text


class MetricgateError(Exception):
    """Base of every error metricgate raises on purpose."""


class ConfigError(MetricgateError):
    """One or more configuration problems, each `key.path: what was expected, got what`."""

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class ConsumeError(MetricgateError):
    """A batch (or a request) could not be consumed; raised as is, it means a bug."""

    reason = "internal"
    http_status = 500
    grpc_code = "INTERNAL"


class PermanentError(ConsumeError):
    """The data is invalid; retrying the same data will fail again.

    From an exporter: `refused` points were refused for good (None: all the batch's points but
    `delivered`), `delivered` points of the same batch reached the backend.
    """

    reason = "permanent"
    http_status = 400
    grpc_code = "INVALID_ARGUMENT"

    def __init__(self, message: str, *, refused: int | None = None, delivered: int = 0) -> None:
        super().__init__(message)
        self.refused = refused
        self.delivered = delivered


class MalformedError(PermanentError):
    """A request whose body cannot be read, decompressed or decoded."""

    reason = "malformed"


class TooLargeError(PermanentError):
    """A request body (on the wire or decompressed) over its configured limit."""

    reason = "too_large"
    http_status = 413
    grpc_code = "RESOURCE_EXHAUSTED"


class RequestTimeoutError(PermanentError):
    """A request body that did not arrive within the listener's `read_timeout`."""

    reason = "timeout"
    http_status = 408
    grpc_code = "DEADLINE_EXCEEDED"


class UnsupportedError(PermanentError):
    """A `Content-Type` or `Content-Encoding` the receiver does not serve."""

    reason = "unsupported"
    http_status = 415


class MethodNotAllowedError(UnsupportedError):
    """An HTTP method the endpoint does not serve."""

    http_status = 405
    grpc_code = "UNIMPLEMENTED"


class RetryableError(ConsumeError):
    """A transient refusal; the sender should retry after `retry_after` seconds."""

    reason = "retryable"
    http_status = 503
    grpc_code = "UNAVAILABLE"

    def __init__(self, message: str, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PartialExportError(RetryableError):
    """Part of a batch was delivered and part is still owed: retry `remaining` only.

    `delivered` points reached the backend, `refused` were refused for good (dropped, counted);
    `remaining` is a `Batch` of what is left (possibly an exporter's already-mapped form of it,
    see `metricgate.pipeline.retry.Unsent`), never empty.
    """

    reason = "partial"

    def __init__(
        self,
        message: str,
        remaining: Batch,
        *,
        delivered: int,
        refused: int = 0,
        retry_after: float = 0.0,
    ) -> None:
        super().__init__(message, retry_after)
        self.remaining = remaining
        self.delivered = delivered
        self.refused = refused


class QueueFullError(RetryableError):
    """An exporter's bounded queue has no room for the batch."""

    reason = "queue_full"
    http_status = 429
    grpc_code = "RESOURCE_EXHAUSTED"


class MemoryLimitError(RetryableError):
    """The process is over its memory soft limit."""

    reason = "memory_limit"
    http_status = 429
    grpc_code = "RESOURCE_EXHAUSTED"


class UnavailableError(RetryableError):
    """The gateway is shutting down, or a required component is not ready."""

    reason = "unavailable"


class RateLimitError(RetryableError):
    """A token bucket is empty: a tenant's points per second, or failed logins from one address."""

    reason = "rate_limited"
    http_status = 429
    grpc_code = "RESOURCE_EXHAUSTED"


class ConcurrencyLimitError(RateLimitError):
    """A tenant already holds its `max_connections` or `max_streams` on this listener."""

    reason = "concurrency_limit"


class InFlightLimitError(RetryableError):
    """Receivers already hold `service.max_inflight_request_bytes` of request bodies."""

    reason = "inflight_limit"


class AccessError(MetricgateError):
    """A request is refused for who sent it; `http_status` and `grpc_code` say how to answer.

    The message is safe to return to the client: it never contains the credential.
    """

    reason = "access"
    http_status = 401
    grpc_code = "UNAUTHENTICATED"


class Unauthenticated(AccessError):
    """Missing, malformed, unknown or expired credentials.

    `challenge` is the `WWW-Authenticate` header value an HTTP answer carries (RFC 9110 11.6.1),
    e.g. `Bearer realm="metricgate"`.
    """

    reason = "unauthenticated"

    def __init__(self, message: str, challenge: str = "") -> None:
        super().__init__(message)
        self.challenge = challenge


class PermissionDenied(AccessError):
    """The credentials are valid but do not carry the right asked for."""

    reason = "permission_denied"
    http_status = 403
    grpc_code = "PERMISSION_DENIED"


class RecordIntegrityError(MetricgateError):
    """An encrypted record failed authentication (tampered, truncated or another key's)."""


class UnknownKeyError(RecordIntegrityError):
    """A segment names an encryption key id that no configured key file has."""


class TelemetryConflictError(MetricgateError, ValueError):
    """An own metric's name registered again with another kind, help, labels or buckets."""

    def __init__(self, name: str, registered: str, asked: str) -> None:
        super().__init__(
            f"own metric {name!r} is already registered as {registered}; "
            f"it cannot also be a {asked}"
        )
        self.name = name
