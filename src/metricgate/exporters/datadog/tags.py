"""Datadog tags and host from the model: `k:v` strings, and who the host of a resource is.

As the Collector's Datadog exporter does: point attributes become `key:value` tags (an empty value
reads `n/a`); `deployment.environment[.name]`, `service.name` and `service.version` become `env`,
`service` and `version` tags; optionally every resource attribute is a tag as well. The host is the
first of `datadog.host.name`, `host.name`, `host.id`, `k8s.node.name` that is set and is not a
loopback name (`localhost` is never a host), else the configured fallback.

Invariant: these functions are pure; the exporter caches their results per interned object.
"""

from __future__ import annotations

import json
import math
from typing import Final

from metricgate.model import Attributes, AttributeValue, Resource
from metricgate.translate.bounds import go_float

HOST_KEYS: Final = ("datadog.host.name", "host.name", "host.id", "k8s.node.name")
_LOOPBACK: Final = frozenset({"", "localhost", "localhost.localdomain", "127.0.0.1", "::1"})
_UNIFIED: Final = (
    ("deployment.environment.name", "env"),
    ("deployment.environment", "env"),
    ("service.name", "service"),
    ("service.version", "version"),
)


def format_float(value: float) -> str:
    """A float as Go's `strconv.FormatFloat(v, 'g', -1, 64)` writes it: `1`, `1e+06`, `-inf`."""
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return "0" if value == 0 else go_float(value)


def tag_value(value: AttributeValue) -> str:
    if value is None or value == "":
        return "n/a"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return format_float(value)
    if isinstance(value, tuple):
        return json.dumps(value, default=str, separators=(",", ":"))
    return str(value)


def attribute_tags(attributes: Attributes) -> list[str]:
    """`key:value` for every attribute."""
    return [f"{key}:{tag_value(value)}" for key, value in attributes]


def resource_tags(resource: Resource, all_attributes: bool) -> list[str]:
    """env/service/version (and every attribute when asked) of a resource."""
    tags: list[str] = []
    seen: set[str] = set()
    for key, tag in _UNIFIED:
        value = resource.get(key)
        if value not in (None, "") and tag not in seen:
            seen.add(tag)
            tags.append(f"{tag}:{tag_value(value)}")
    if all_attributes:
        tags.extend(attribute_tags(resource.attributes))
    return tags


def host(resource: Resource, fallback: str) -> str:
    """The Datadog host of a resource; `fallback` when it names none ("" for no host)."""
    for key in HOST_KEYS:
        value = resource.get(key)
        if isinstance(value, str) and value.strip().lower() not in _LOOPBACK:
            return value
    return "" if fallback.strip().lower() in _LOOPBACK else fallback
