"""Load, substitute and validate a metricgate config file.

The file has the OpenTelemetry Collector's shape (`receivers`, `processors`, `exporters`,
`service.pipelines`, `service.telemetry`), plus `extensions`, `service.extensions` and
`tenants`. String values may reference the environment with `${env:VAR}` or
`${env:VAR:-default}`, and a file's content (trailing newlines dropped: secrets kept in files)
with `${file:PATH}`; `$$` is a literal `$`. A `${name}` without a scheme (a regex group in a
pasted relabel `replacement: ${1}`) is left as it is. A value that is one whole reference is
parsed as YAML after substitution, so `port: ${env:PORT}` gives an integer.

Invariant: `load_config` either returns a fully validated `Config` (every component config model
built, every pipeline reference resolved) or raises `ConfigError` listing *every* problem found,
each as `key.path: what was expected, got what`.
"""

from __future__ import annotations

import os
import re
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
from metricgate.config.components import ComponentType, ComponentTypes, Kind
from metricgate.config.errors import format_validation_error
from metricgate.config.listeners import HttpListenerSettings
from metricgate.config.memory_limiter import MemoryLimiterSettings
from metricgate.config.overrides import apply_overrides
from metricgate.config.tenants import TenantsConfig
from metricgate.config.types import ByteSize, ComponentConfig, Duration, parse_endpoint
from metricgate.errors import ConfigError

_REFERENCE_RE = re.compile(r"\$\$|\$\{([^}]*)\}")
_ENV_RE = re.compile(r"^env:([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?$", re.DOTALL)
_FILE_RE = re.compile(r"^file:(.+)$", re.DOTALL)
_ID_RE = re.compile(r"^[a-z][a-z0-9_]*(/[^/\s]+)?$")
_SECTIONS = {kind.section: kind for kind in Kind}


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


@dataclass(frozen=True)
class ComponentSpec:
    """A configured component: its id, factory and validated config."""

    id: str
    kind: Kind
    factory: ComponentType
    config: ComponentConfig


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


def substitute_env(
    value: Any, path: str, env: dict[str, str], warnings: list[str], problems: list[str]
) -> Any:
    """Expand `${env:...}` references in every string of a parsed YAML tree."""
    if isinstance(value, dict):
        return {
            k: substitute_env(v, f"{path}.{k}" if path else str(k), env, warnings, problems)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [
            substitute_env(v, f"{path}[{i}]", env, warnings, problems) for i, v in enumerate(value)
        ]
    if not isinstance(value, str) or "$" not in value:
        return value

    def expand(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        if ":" not in match.group(1):
            return match.group(0)  # `${1}` in a relabel replacement: not ours to expand
        file_reference = _FILE_RE.match(match.group(1))
        if file_reference is not None:
            return _read_reference(file_reference.group(1), path, problems)
        reference = _ENV_RE.match(match.group(1))
        if reference is None:
            problems.append(
                f"{path}: expected ${{env:VAR}}, ${{env:VAR:-default}} or ${{file:PATH}}, "
                f"got {match.group(0)!r}"
            )
            return match.group(0)
        name, default = reference.group(1), reference.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        warnings.append(f"{path}: environment variable {name} is not set; using ''")
        return ""

    expanded = _REFERENCE_RE.sub(expand, value)
    whole = _REFERENCE_RE.fullmatch(value)
    if whole is not None and ":" in (whole.group(1) or ""):
        try:
            parsed = yaml.safe_load(expanded) if expanded else expanded
        except yaml.YAMLError:
            return expanded
        return parsed if parsed is not None else expanded
    return expanded


def _read_reference(file_path: str, path: str, problems: list[str]) -> str:
    try:
        return Path(file_path).read_text(encoding="utf-8").rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        problems.append(f"{path}: cannot read ${{file:{file_path}}}: {reason}")
        return ""


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
        service = _memory_limiter(service, sections[Kind.PROCESSOR], problems, warnings)
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
    specs: dict[str, ComponentSpec] = {}
    if raw is None:
        return specs
    if not isinstance(raw, dict):
        problems.append(f"{section}: expected a mapping of component ids, got {raw!r}")
        return specs
    for component_id, component_raw in raw.items():
        path = f"{section}.{component_id}"
        if not isinstance(component_id, str) or not _ID_RE.match(component_id):
            problems.append(f"{path}: expected a component id like 'type' or 'type/name'")
            continue
        type_name = component_id.partition("/")[0]
        factory = registry.get(kind, type_name)
        if factory is None:
            known = ", ".join(registry.types(kind)) or "none"
            problems.append(f"{path}: unknown {kind.value} type {type_name!r} (known: {known})")
            continue
        try:
            config = factory.config_model.model_validate(component_raw or {})
        except ValidationError as exc:
            problems.extend(format_validation_error(exc, path, factory.config_model))
            continue
        specs[component_id] = ComponentSpec(component_id, kind, factory, config)
    return specs


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
            seen: set[str] = set()
            for index, component_id in enumerate(ids):
                path = f"service.pipelines.{pipeline_id}.{kind.section}[{index}]"
                if component_id in seen:
                    problems.append(f"{path}: {component_id!r} is listed twice")
                seen.add(component_id)
                used[kind].add(component_id)
                if component_id not in declared[kind]:
                    problems.append(
                        f"{path}: references {kind.value} {component_id!r}, "
                        f"which is not defined under {kind.section}"
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


_MEMORY_LIMITER_PROCESSOR = "memory_limiter"


def _memory_limiter(
    service: ServiceConfig,
    processors: dict[str, ComponentSpec],
    problems: list[str],
    warnings: list[str],
) -> ServiceConfig:
    """Map the deprecated `memory_limiter` processors onto `service.memory_limiter`.

    The limit is one per process: processors listed in pipelines must agree on their settings;
    `service.memory_limiter`, when set, wins over them.
    """
    listed = dict.fromkeys(
        p for pipeline in service.pipelines.values() for p in pipeline.processors
    )
    forms = {
        component_id: spec.config
        for component_id, spec in processors.items()
        if component_id in listed and spec.factory.type == _MEMORY_LIMITER_PROCESSOR
    }
    if not forms:
        return service
    ids = ", ".join(f"processors.{component_id}" for component_id in forms)
    if service.memory_limiter is not None:
        warnings.append(
            f"{ids}: deprecated and ignored: service.memory_limiter is set and applies to the "
            "whole process; remove the processor from the pipelines"
        )
        return service
    settings = {
        component_id: config.settings()
        for component_id, config in forms.items()
        if isinstance(config, MemoryLimiterSettings)
    }
    first_id, first = next(iter(settings.items()))
    for component_id, other in settings.items():
        if other != first:
            problems.append(
                f"processors.{component_id}: settings differ from processors.{first_id}; memory "
                "is limited once per process: set service.memory_limiter instead"
            )
            return service
    warnings.append(
        f"{ids}: the memory_limiter processor is deprecated; it limits the whole process, so "
        "its settings now belong under service.memory_limiter (applied from there as they are)"
    )
    return service.model_copy(update={"memory_limiter": first})
