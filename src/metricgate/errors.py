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
    └── ConsumeError                a component could not take a batch
        ├── PermanentError          the data itself is bad: drop it, tell the client (HTTP 400,
        │                           gRPC INVALID_ARGUMENT); retrying cannot help
        └── RetryableError          a transient condition: the client should retry later
            ├── PartialExportError  an export delivered part of a batch: retry only `remaining`
            ├── QueueFullError      an exporter queue is full (HTTP 429, RESOURCE_EXHAUSTED)
            ├── MemoryLimitError    the memory limiter refuses data (HTTP 429, RESOURCE_EXHAUSTED)
            ├── UnavailableError    shutting down or a backend is down (HTTP 503, UNAVAILABLE)
            └── RateLimitError      a tenant's ingestion rate, or a client address's failed
                                    logins, are over their limit (HTTP 429, RESOURCE_EXHAUSTED)

Receivers translate these into protocol status codes; `retry_after` (seconds) becomes a
`Retry-After` header or a gRPC RetryInfo detail.

Exporters tell the sending core how much of a batch reached the backend: `export()` returns the
points delivered (None: all), `PermanentError(refused=, delivered=)` says part of a batch was
refused for good, and `PartialExportError` carries what is still owed (the Collector's
`consumererror` with its remaining data), so only that is retried.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from metricgate.model import Batch


class MetricgateError(Exception):
    """Base of every error metricgate raises on purpose."""


class ConfigError(MetricgateError):
    """One or more configuration problems, each `key.path: what was expected, got what`."""

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class ConsumeError(MetricgateError):
    """A batch could not be consumed."""


class PermanentError(ConsumeError):
    """The data is invalid; retrying the same data will fail again.

    From an exporter: `refused` points were refused for good (None: all the batch's points but
    `delivered`), `delivered` points of the same batch reached the backend.
    """

    def __init__(self, message: str, *, refused: int | None = None, delivered: int = 0) -> None:
        super().__init__(message)
        self.refused = refused
        self.delivered = delivered


class RetryableError(ConsumeError):
    """A transient refusal; the sender should retry after `retry_after` seconds."""

    reason = "retryable"

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


class MemoryLimitError(RetryableError):
    """The process is over its memory soft limit."""

    reason = "memory_limit"


class UnavailableError(RetryableError):
    """The gateway is shutting down, or a required component is not ready."""

    reason = "unavailable"


class RateLimitError(RetryableError):
    """A token bucket is empty: a tenant's points per second, or failed logins from one address."""

    reason = "rate_limited"


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
