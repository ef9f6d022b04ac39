"""`${env:...}` and `${file:...}` references in config values, expanded before validation.

String values may reference the environment with `${env:VAR}` or `${env:VAR:-default}`, and a
file's content (trailing newlines dropped: secrets kept in files) with `${file:PATH}`; `$$` is a
literal `$`. A `${name}` without a scheme (a regex group in a pasted relabel `replacement: ${1}`)
is left as it is. A value that is one whole reference is parsed as YAML after substitution, so
`port: ${env:PORT}` gives an integer.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

__all__ = ["substitute_env"]

_REFERENCE_RE = re.compile(r"\$\$|\$\{([^}]*)\}")
_ENV_RE = re.compile(r"^env:([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?$", re.DOTALL)
_FILE_RE = re.compile(r"^file:(.+)$", re.DOTALL)


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
