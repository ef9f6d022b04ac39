"""The exception hierarchy, in one place.

    MetricgateError
    ├── ConfigError                 bad configuration; names the key path and what was expected
    └── ConsumeError                a component could not take a batch
        ├── PermanentError          the data itself is bad: drop it, tell the client (HTTP 400,
        │                           gRPC INVALID_ARGUMENT); retrying cannot help
        └── RetryableError          a transient condition: the client should retry later
            ├── QueueFullError      an exporter queue is full (HTTP 429, RESOURCE_EXHAUSTED)
            ├── MemoryLimitError    the memory limiter refuses data (HTTP 429, RESOURCE_EXHAUSTED)
            └── UnavailableError    shutting down or a backend is down (HTTP 503, UNAVAILABLE)

Receivers translate these into protocol status codes; `retry_after` (seconds) becomes a
`Retry-After` header or a gRPC RetryInfo detail.
"""

from __future__ import annotations


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
    """The data is invalid; retrying the same data will fail again."""


class RetryableError(ConsumeError):
    """A transient refusal; the sender should retry after `retry_after` seconds."""

    reason = "retryable"

    def __init__(self, message: str, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class QueueFullError(RetryableError):
    """An exporter's bounded queue has no room for the batch."""

    reason = "queue_full"


class MemoryLimitError(RetryableError):
    """The process is over its memory soft limit."""

    reason = "memory_limit"


class UnavailableError(RetryableError):
    """The gateway is shutting down, or a required component is not ready."""

    reason = "unavailable"
