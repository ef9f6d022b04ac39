"""Value types that config models share: endpoints, durations and byte sizes.

Each parser raises `ValueError("expected ..., got ...")`; the loader prefixes the key path, so a
user reads `exporters.prometheus.endpoint: expected host:port, got 'abc'`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict


class ComponentConfig(BaseModel):
    """Base of every component's config model: unknown keys are errors, values are checked."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def parse_endpoint(value: Any) -> str:
    """`host:port` (host may be empty, `0.0.0.0`, `[::1]`); port 0 means any free port."""
    if not isinstance(value, str):
        raise ValueError(f"expected host:port, got {value!r}")
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"expected host:port, got {value!r}")
    if host.startswith("[") != host.endswith("]"):
        raise ValueError(f"expected host:port, got {value!r}")
    return value


def split_endpoint(endpoint: str) -> tuple[str, int]:
    """Split a checked endpoint into (host, port); an empty host means all interfaces."""
    host, _, port = endpoint.rpartition(":")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


_DURATION_PART = r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d)"
_DURATION_RE = re.compile(rf"^(?:{_DURATION_PART})+$")
_DURATION_PART_RE = re.compile(_DURATION_PART)
_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
}


def parse_duration(value: Any) -> float:
    """A duration in seconds: a number (seconds) or `500ms`, `30s`, `5m`, `1h`, `1h30m`."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    if isinstance(value, str):
        text = value.replace(" ", "")
        if _DURATION_RE.match(text):
            return sum(
                float(number) * _DURATION_UNITS[unit]
                for number, unit in _DURATION_PART_RE.findall(text)
            )
    raise ValueError(f"expected a duration like 30s or 5m, got {value!r}")


_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B?|B)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "t": 1000**4,
    "tb": 1000**4,
    "ki": 1024,
    "kib": 1024,
    "mi": 1024**2,
    "mib": 1024**2,
    "gi": 1024**3,
    "gib": 1024**3,
    "ti": 1024**4,
    "tib": 1024**4,
}


def parse_byte_size(value: Any) -> int:
    """A size in bytes: an integer or `512KiB`, `20MiB`, `1GB`."""
    if isinstance(value, bool):
        raise ValueError(f"expected a size like 20MiB, got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"expected a non-negative size, got {value!r}")
        return value
    if isinstance(value, str):
        match = _SIZE_RE.match(value)
        if match:
            return int(float(match.group(1)) * _SIZE_UNITS[(match.group(2) or "").lower()])
    raise ValueError(f"expected a size like 20MiB, got {value!r}")


Endpoint = Annotated[str, BeforeValidator(parse_endpoint)]
Duration = Annotated[float, BeforeValidator(parse_duration)]
ByteSize = Annotated[int, BeforeValidator(parse_byte_size)]
