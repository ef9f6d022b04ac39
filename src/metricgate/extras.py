"""Optional dependencies: which extra installs what, and the error that names the missing extra.

The gateway itself needs only the core dependencies. The agent catalog's recorder, `metricgate
demo` and the Grafana dashboards need the `catalog` extra (the OpenTelemetry SDK and exporters,
grafana-foundation-sdk); the `cloudwatch` exporter and `catalog dashboards --push` to CloudWatch
need the `cloudwatch` extra (botocore); `all` is both.

Invariant: a module that needs an optional dependency imports it through `require` (or turns the
ImportError into `MissingExtraError` itself), so a user without the extra reads which extra to
install, never a bare ModuleNotFoundError.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Final

__all__ = ["EXTRAS", "MissingExtraError", "require"]

EXTRAS: Final = {
    "catalog": (
        "opentelemetry-sdk",
        "opentelemetry-exporter-otlp-proto-grpc",
        "opentelemetry-exporter-otlp-proto-http",
        "grafana-foundation-sdk",
    ),
    "cloudwatch": ("botocore",),
}
"""Extra -> the distributions it adds (pyproject.toml's optional-dependencies say the versions)."""

_DISTRIBUTIONS: Final = {
    "opentelemetry.sdk": "opentelemetry-sdk",
    "opentelemetry.exporter.otlp.proto.grpc": "opentelemetry-exporter-otlp-proto-grpc",
    "opentelemetry.exporter.otlp.proto.http": "opentelemetry-exporter-otlp-proto-http",
    "opentelemetry": "opentelemetry-api",
    "grafana_foundation_sdk": "grafana-foundation-sdk",
    "botocore": "botocore",
}
"""Module (prefix) -> the distribution that installs it, for the message."""


def _distribution(module: str) -> str:
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        found = _DISTRIBUTIONS.get(".".join(parts[:end]))
        if found is not None:
            return found
    return module


class MissingExtraError(ImportError):
    """A feature needs an optional dependency that is not installed; says which extra adds it."""

    def __init__(self, feature: str, extra: str, module: str) -> None:
        self.extra = extra
        super().__init__(
            f"{feature} needs the '{extra}' extra ({_distribution(module)} is not installed): "
            f"pip install 'metricgate[{extra}]'",
            name=module,
        )

    @classmethod
    def of(cls, exc: ImportError, extra: str, feature: str) -> MissingExtraError:
        """The error for `exc`, raised while `feature` imported a module of `extra`."""
        return cls(feature, extra, exc.name or str(exc))


def require(module: str, extra: str, feature: str) -> ModuleType:
    """`module`, imported; `MissingExtraError` naming `extra` when it (or a part) is missing."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError.of(exc, extra, feature) from exc
