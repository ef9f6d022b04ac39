"""Load and validate a metricgate config file.

The file has the OpenTelemetry Collector's shape (`receivers`, `processors`, `exporters`,
`service.pipelines`, `service.telemetry`), plus `extensions`, `service.extensions` and
`tenants`. References to the environment and to files (`${env:VAR}`, `${file:PATH}`) are expanded
first (`substitution.py`).

Invariant: `load_config` either returns a fully validated `Config` (every component config model
built, every pipeline reference resolved) or raises `ConfigError` listing *every* problem found,
each as `key.path: what was expected, got what`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from metricgate.config.audit import AuditConfig
from metricgate.config.auth import (
    ExtensionCatalog,
    ExtensionSpec,
    check_extension_references,
    parse_extensions,
)
from metricgate.config.components import ComponentSpec, ComponentTypes, Kind
from metricgate.config.encryption import EncryptionConfig
from metricgate.config.errors import format_validation_error
from metricgate.config.listeners import HttpListenerSettings
from metricgate.config.memory_limiter import MemoryLimiterSettings, from_processors
from metricgate.config.overrides import apply_overrides
from metricgate.config.sections import check_listed, typed_entries
from metricgate.config.substitution import substitute_env
from metricgate.config.tenants import TenantsConfig
from metricgate.config.types import ByteSize, Duration, parse_endpoint
from metricgate.errors import ConfigError

_SECTIONS = {kind.section: kind for kind in Kind}

__all__ = [
    "ComponentSpec",
    "Config",
    "PipelineConfig",
    "ServiceConfig",
    "load_config",
    "load_config_text",
    "parse_config",
    "substitute_env",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PipelineConfig(_Strict):
    """One `service.pipelines` entry."""

    receivers: list[str] = Field(min_length=1)
    processors: list[str] = []
    exporters: list[str] = Field(min_length=1)


def _telemetry_address(value: Any) -> str:
    if value in ("", "none", None):
        return ""
    return parse_endpoint(value)


class TelemetryMetricsConfig(HttpListenerSettings):
    """`service.telemetry.metrics`: where metricgate serves its own metrics and health checks,
    with the listener settings of every HTTP endpoint."""

    address: str = "0.0.0.0:8888"
    """`host:port`; an empty string disables the telemetry server."""

    _check_address = field_validator("address", mode="before")(_telemetry_address)


class TelemetryLogsConfig(_Strict):
    """`service.telemetry.logs`."""

    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["json", "console"] = "console"


class TelemetryConfig(_Strict):
    metrics: TelemetryMetricsConfig = TelemetryMetricsConfig()
    logs: TelemetryLogsConfig = TelemetryLogsConfig()
    audit: AuditConfig = AuditConfig()


class ServiceConfig(_Strict):
    """The `service` section."""

    pipelines: dict[str, PipelineConfig] = Field(min_length=1)
    telemetry: TelemetryConfig = TelemetryConfig()
    shutdown_timeout: Duration = 30.0
    """How long shutdown may take to drain queues and flush before the process exits anyway."""
    extensions: list[str] = []
    """Ids from the top-level `extensions:` section that are enabled."""
    max_inflight_request_bytes: ByteSize = Field(default=256 * 1024 * 1024, gt=0)
    """Request bytes (as received and decompressed) all receivers may hold at once."""
    memory_limiter: MemoryLimiterSettings | None = None
    """The process-wide memory limiter (none by default); see `metricgate.pipeline.memory`."""
    state_directory: str | None = Field(default=None, min_length=1)
    """Where stateful components keep their state across graceful restarts (None: they do not);
    see `metricgate.pipeline.snapshots`."""
    state_encryption: EncryptionConfig | None = None
    """Seal the state snapshots with AES-256-GCM (the keys of `sending_queue.storage.encryption`);
    the key files are read when the gateway starts."""
    watch_config: bool = False
    """Reload when the config file changes on disk (`metricgate run --config`; see
    `metricgate.pipeline.reload`)."""

    @field_validator("pipelines")
    @classmethod
    def _pipeline_ids(cls, pipelines: dict[str, PipelineConfig]) -> dict[str, PipelineConfig]:
        for pipeline_id in pipelines:
            kind, _, name = pipeline_id.partition("/")
            if kind != "metrics" or (_ and not name):
                raise ValueError(
                    f"expected pipeline ids 'metrics' or 'metrics/<name>', got {pipeline_id!r}"
                )
        return pipelines


@dataclass
class Config:
    """A validated configuration, ready for `metricgate.pipeline.graph.build`."""

    receivers: dict[str, ComponentSpec]
    processors: dict[str, ComponentSpec]
    exporters: dict[str, ComponentSpec]
    service: ServiceConfig
    warnings: list[str] = field(default_factory=list)
    extensions: dict[str, ExtensionSpec] = field(default_factory=dict)
    tenants: TenantsConfig | None = None
    """The `tenants:` section; None when absent (no per-tenant rights or limits)."""

    def section(self, kind: Kind) -> dict[str, ComponentSpec]:
        return {Kind.RECEIVER: self.receivers, Kind.PROCESSOR: self.processors}.get(
            kind, self.exporters
        )


def parse_config(
    raw: Any,
    registry: ComponentTypes,
    env: dict[str, str] | None = None,
    extensions: ExtensionCatalog | None = None,
) -> Config:
    """Validate an already-parsed YAML document.

    `extensions` validates the bodies of the `extensions:` section; without it they are kept as
    given (ids and references are still checked).
    """
    problems: list[str] = []
    warnings: list[str] = []
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"(top level): expected a mapping, got {type(raw).__name__}")
    raw = substitute_env(raw, "", dict(os.environ) if env is None else env, warnings, problems)

    for key in raw:
        if key not in (*_SECTIONS, "service", "extensions", "connectors", "tenants"):
            problems.append(
                f"{key}: unknown key (expected one of: receivers, processors, exporters, "
                "extensions, tenants, service)"
            )
        elif key == "connectors" and raw[key]:
            problems.append(f"{key}: not supported by metricgate")

    sections: dict[Kind, dict[str, ComponentSpec]] = {}
    declared: dict[Kind, set[str]] = {}
    for section, kind in _SECTIONS.items():
        section_raw = raw.get(section)
        declared[kind] = set(section_raw) if isinstance(section_raw, dict) else set()
        sections[kind] = _parse_section(section_raw, section, kind, registry, problems)

    service: ServiceConfig | None = None
    raw_service = raw.get("service")
    if raw_service is None:
        problems.append("service: required key is missing (it holds service.pipelines)")
    else:
        try:
            service = ServiceConfig.model_validate(raw_service)
        except ValidationError as exc:
            problems.extend(format_validation_error(exc, "service", ServiceConfig))

    extension_specs = parse_extensions(raw.get("extensions"), extensions, problems)
    tenants: TenantsConfig | None = None
    if raw.get("tenants") is not None:
        try:
            tenants = TenantsConfig.model_validate(raw["tenants"])
        except ValidationError as exc:
            problems.extend(format_validation_error(exc, "tenants", None))

    # A mistake elsewhere under `service` must not hide the pipelines' reference errors: every
    # problem is listed at once.
    pipelines = service.pipelines if service is not None else _salvage_pipelines(raw_service)
    _check_pipelines(pipelines, sections, declared, problems, warnings)
    if service is not None:
        raw_extensions = raw.get("extensions")
        check_extension_references(
            service.extensions,
            set(raw_extensions) if isinstance(raw_extensions, dict) else set(),
            extension_specs,
            {
                **{
                    f"{kind.section}.{spec.id}": spec.config
                    for kind, specs in sections.items()
                    for spec in specs.values()
                },
                "service.telemetry.metrics": service.telemetry.metrics,
            },
            problems,
            warnings,
        )
        listed = (p for pipeline in service.pipelines.values() for p in pipeline.processors)
        limiter = from_processors(
            listed, sections[Kind.PROCESSOR], service.memory_limiter, problems, warnings
        )
        if limiter is not service.memory_limiter:
            service = service.model_copy(update={"memory_limiter": limiter})
    if problems:
        raise ConfigError(problems)
    assert service is not None
    return Config(
        receivers=sections[Kind.RECEIVER],
        processors=sections[Kind.PROCESSOR],
        exporters=sections[Kind.EXPORTER],
        service=service,
        warnings=warnings,
        extensions=extension_specs,
        tenants=tenants,
    )


def load_config(
    path: str | Path,
    registry: ComponentTypes,
    env: dict[str, str] | None = None,
    extensions: ExtensionCatalog | None = None,
    overrides: Sequence[str] = (),
) -> Config:
    """Read and validate a YAML config file (with `--set` `overrides` applied)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror or exc}") from exc
    return load_config_text(
        text, registry, env, source=str(path), extensions=extensions, overrides=overrides
    )


def load_config_text(
    text: str,
    registry: ComponentTypes,
    env: dict[str, str] | None = None,
    source: str = "<config>",
    extensions: ExtensionCatalog | None = None,
    overrides: Sequence[str] = (),
) -> Config:
    """Validate a YAML document, after applying the `--set` `overrides` (`config.overrides`)."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{source}: invalid YAML{where}: {problem}") from exc
    problems: list[str] = []
    raw = apply_overrides(raw, overrides, problems)
    try:
        config = parse_config(raw, registry, env, extensions)
    except ConfigError as exc:
        raise ConfigError([*problems, *exc.problems]) from None
    if problems:
        raise ConfigError(problems)
    return config


def _parse_section(
    raw: Any, section: str, kind: Kind, registry: ComponentTypes, problems: list[str]
) -> dict[str, ComponentSpec]:
    entries = typed_entries(
        raw,
        section,
        "component",
        lambda type_name: registry.get(kind, type_name),
        lambda: registry.types(kind),
        problems,
        type_noun=kind.value,
    )
    return {
        component_id: ComponentSpec(component_id, kind, factory, config)
        for component_id, factory, config in entries
    }


def _salvage_pipelines(raw_service: Any) -> dict[str, PipelineConfig]:
    """The well-formed component lists of each pipeline, when `service` as a whole is invalid
    (the invalid parts were reported already)."""
    raw_pipelines = raw_service.get("pipelines") if isinstance(raw_service, dict) else None
    if not isinstance(raw_pipelines, dict):
        return {}
    salvaged: dict[str, PipelineConfig] = {}
    for pipeline_id, raw in raw_pipelines.items():
        if not isinstance(raw, dict):
            continue
        salvaged[str(pipeline_id)] = PipelineConfig.model_construct(
            receivers=_names(raw.get("receivers")),
            processors=_names(raw.get("processors")),
            exporters=_names(raw.get("exporters")),
        )
    return salvaged


def _names(value: Any) -> list[str]:
    return value if isinstance(value, list) and all(isinstance(i, str) for i in value) else []


def _check_pipelines(
    pipelines: dict[str, PipelineConfig],
    sections: dict[Kind, dict[str, ComponentSpec]],
    declared: dict[Kind, set[str]],
    problems: list[str],
    warnings: list[str],
) -> None:
    """Resolve pipeline references; ids declared but invalid were already reported."""
    used: dict[Kind, set[str]] = {kind: set() for kind in Kind}
    for pipeline_id, pipeline in pipelines.items():
        for kind, ids in (
            (Kind.RECEIVER, pipeline.receivers),
            (Kind.PROCESSOR, pipeline.processors),
            (Kind.EXPORTER, pipeline.exporters),
        ):
            used[kind] |= check_listed(
                ids,
                f"service.pipelines.{pipeline_id}.{kind.section}",
                declared[kind],
                kind.value,
                kind.section,
                problems,
            )
    for kind in Kind:
        for component_id in sorted(declared[kind] - used[kind]):
            warnings.append(
                f"{kind.section}.{component_id}: defined but not used in any pipeline; ignored"
            )
    # A processor whose config has `pipeline_problems` (routing) checks where it is used.
    for pipeline_id, pipeline in pipelines.items():
        for component_id in dict.fromkeys(pipeline.processors):
            spec = sections[Kind.PROCESSOR].get(component_id)
            check = getattr(spec.config, "pipeline_problems", None) if spec else None
            if callable(check):
                problems.extend(
                    check(
                        f"processors.{component_id}",
                        pipeline_id,
                        list(pipeline.processors),
                        list(pipeline.exporters),
                    )
                )
