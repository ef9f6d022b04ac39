"""`--set key.path=value`: command-line overrides of config values, as the Collector's `--set`.

Each override names a path of mapping keys from the top of the file (`processors.batch.timeout`;
a component id with a `/` is one key: `exporters.prometheus_remote_write/mimir.headers.X-Team`)
and a value read as YAML (`5s`, `true`, `[a, b]`, `{endpoint: "0.0.0.0:4317"}`). Missing mappings
on the way are created; a value that is not a mapping on the way (a list, a string) is an error
naming the override and the key. Overrides apply in order, after the file is read and before
`${env:...}` substitution and validation, so they go through every check a value in the file
does; `metricgate run` applies them again to the file it re-reads on every reload.

Invariant: `apply_overrides` never changes the tree it is given; each problem names the key path
and the `--set` it came from, and is reported with the validation's problems, all at once.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import yaml

from metricgate.errors import ConfigError

_KINDS = {list: "list", str: "string", int: "number", float: "number", bool: "boolean"}


def parse_override(text: str) -> tuple[list[str], Any]:
    """`key.path=value` as (keys, value); raises `ConfigError` naming `text` when malformed."""
    path, sep, raw = text.partition("=")
    keys = path.strip().split(".")
    if not sep or not all(key.strip() for key in keys):
        raise ConfigError(
            f"--set {text}: expected key.path=value (keys separated by '.', none empty)"
        )
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"--set {text}: the value is not valid YAML: {problem}") from exc
    return [key.strip() for key in keys], value


def apply_overrides(raw: Any, overrides: Sequence[str], problems: list[str]) -> Any:
    """A copy of the parsed document `raw` with every override applied (see module docstring);
    the overrides that cannot be applied are left out and added to `problems`."""
    if not overrides or not isinstance(raw, dict | None):
        return raw
    tree: dict[str, Any] = copy.deepcopy(raw) if raw is not None else {}
    for text in overrides:
        try:
            keys, value = parse_override(text)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        node = tree
        for depth, key in enumerate(keys[:-1]):
            child = node.get(key)
            if child is None:
                child = node[key] = {}
            elif not isinstance(child, dict):
                where = ".".join(keys[: depth + 1])
                problems.append(
                    f"{where}: expected a mapping to set {'.'.join(keys)} in (--set {text}), "
                    f"got a {_KINDS.get(type(child), type(child).__name__)}"
                )
                break
            node = child
        else:
            node[keys[-1]] = value
    return tree
