"""Configuration: YAML loading, environment substitution and validation with key-path errors."""

from metricgate.config.loader import (
    ComponentSpec,
    Config,
    PipelineConfig,
    ServiceConfig,
    load_config,
    load_config_text,
    parse_config,
)
from metricgate.config.types import ByteSize, ComponentConfig, Duration, Endpoint

__all__ = [
    "ByteSize",
    "ComponentConfig",
    "ComponentSpec",
    "Config",
    "Duration",
    "Endpoint",
    "PipelineConfig",
    "ServiceConfig",
    "load_config",
    "load_config_text",
    "parse_config",
]
