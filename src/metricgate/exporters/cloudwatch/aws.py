"""The AWS plumbing both CloudWatch modes share: botocore clients and what their errors mean.

botocore comes with the `cloudwatch` extra. Without it this module still imports (the exporter
is registered either way) and the exporter's config refuses to validate, naming the extra; so
nothing below runs without botocore.

Clients retry nothing themselves (`total_max_attempts: 1`): the sending queue owns retries, so a
throttled request waits with the exporter's backoff and jitter instead of botocore's.
"""

from __future__ import annotations

from typing import Any, Final

from metricgate.errors import PermanentError, RetryableError
from metricgate.exporters.cloudwatch.config import CloudWatchExporterConfig

try:
    import botocore.config  # type: ignore[import-untyped]
    import botocore.exceptions  # type: ignore[import-untyped]
    import botocore.session  # type: ignore[import-untyped]
except ImportError:  # without the `cloudwatch` extra the config refuses this exporter
    AWS_ERRORS: tuple[type[Exception], ...] = (OSError,)
else:
    AWS_ERRORS = (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError, OSError)
"""What a botocore call raises when the call fails (as opposed to a bug of ours)."""

RETRYABLE_CODES: Final = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "ServiceUnavailable",
        "ServiceUnavailableException",
    }
)
"""AWS error codes worth a retry (besides any 5xx and 429)."""


def make_client(config: CloudWatchExporterConfig, service: str) -> Any:
    """A botocore client of `service` (`cloudwatch`, `logs`) for `config`; it may read credentials
    files, so call it in a thread. Without a region anywhere, `us-east-1`."""
    session = botocore.session.get_session()
    client_config = botocore.config.Config(
        region_name=config.region or None,
        connect_timeout=config.timeout,
        read_timeout=config.timeout,
        retries={"mode": "standard", "total_max_attempts": 1},
        disable_request_compression=config.disable_request_compression,
    )
    if not config.region and session.get_config_variable("region") is None:
        client_config = client_config.merge(botocore.config.Config(region_name="us-east-1"))
    return session.create_client(
        service, endpoint_url=config.endpoint or None, config=client_config
    )


def error_code(exc: Exception) -> str:
    """The AWS error code of a failed call (`Throttling`, ...), or "" when it has none."""
    if isinstance(exc, botocore.exceptions.ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def classify(operation: str, exc: Exception) -> Exception:
    """The RetryableError or PermanentError a botocore failure of `operation` means."""
    if isinstance(exc, botocore.exceptions.ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
        message = f"{operation}: {code} (HTTP {status}): {error.get('Message', '')}"
        if code in RETRYABLE_CODES or status >= 500 or status == 429:
            return RetryableError(message, 0.0)
        return PermanentError(message)
    if isinstance(exc, botocore.exceptions.ParamValidationError):
        return PermanentError(f"{operation}: {exc}")
    return RetryableError(f"{operation}: {type(exc).__name__}: {exc}", 0.0)
