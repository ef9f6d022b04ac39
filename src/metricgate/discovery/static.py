"""`static_configs`: targets written in the config itself, and the same list read from a document.

file_sd and http_sd read a list of static configs (`[{"targets": [...], "labels": {...}}, ...]`)
from a file or an HTTP response; `groups_from_document` checks such a list with the very model
`static_configs` uses, so the three accept exactly the same entries.
"""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter, ValidationError, field_validator

from metricgate.config.errors import format_validation_error
from metricgate.config.types import ComponentConfig
from metricgate.discovery.targets import (
    Discoverer,
    OnRefresh,
    SendGroups,
    TargetGroup,
    ignore_refresh,
)
from metricgate.translate.names import LABEL_NAME_RE


class StaticConfig(ComponentConfig):
    """One `static_configs` entry: `targets` (`host:port` each) and labels they all get."""

    targets: list[str] = []
    labels: dict[str, str] = {}

    @field_validator("targets")
    @classmethod
    def _addresses(cls, targets: list[str]) -> list[str]:
        for target in targets:
            if not target or "/" in target or target.strip() != target:
                raise ValueError(f"expected host:port targets, got {target!r}")
        return targets

    @field_validator("labels")
    @classmethod
    def _label_names(cls, labels: dict[str, str]) -> dict[str, str]:
        for name in labels:
            if not LABEL_NAME_RE.match(name):
                raise ValueError(f"expected label names like [a-zA-Z_][a-zA-Z0-9_]*, got {name!r}")
        return labels

    def group(self, source: str, extra_labels: dict[str, str] | None = None) -> TargetGroup:
        """This entry as a target group (`extra_labels`, such as `__meta_filepath`, added)."""
        labels = {name: value for name, value in self.labels.items() if value}
        if extra_labels:
            labels.update(extra_labels)
        return TargetGroup(
            source=source,
            targets=tuple({"__address__": target} for target in self.targets),
            labels=labels,
        )


_DOCUMENT: TypeAdapter[list[StaticConfig]] = TypeAdapter(list[StaticConfig])


class DocumentError(ValueError):
    """A file_sd file or http_sd response that is not a list of static configs."""


def groups_from_document(
    document: Any, source: str, extra_labels: dict[str, str]
) -> list[TargetGroup]:
    """The groups of a parsed JSON/YAML list of static configs, sourced `<source>:<index>`.

    Raises `DocumentError` naming the first entries that are wrong (`[2].labels: ...`).
    """
    if document is None:
        return []
    try:
        entries = _DOCUMENT.validate_python(document)
    except ValidationError as exc:
        problems = format_validation_error(exc, "")
        raise DocumentError("; ".join(problems[:3])) from None
    return [entry.group(f"{source}:{index}", extra_labels) for index, entry in enumerate(entries)]


class StaticDiscoverer(Discoverer):
    """Sends its configured groups once; static targets never change while running."""

    mechanism = "static"

    def __init__(
        self,
        configs: list[StaticConfig],
        name: str = "static",
        on_refresh: OnRefresh = ignore_refresh,
    ) -> None:
        self.groups = [config.group(f"{name}/{index}") for index, config in enumerate(configs)]
        self.on_refresh = on_refresh

    async def run(self, send: SendGroups) -> None:
        self.on_refresh(self.mechanism, False)
        send(list(self.groups))
