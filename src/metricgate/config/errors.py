"""Turn pydantic validation errors into `key.path: expected X, got Y` lines."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from metricgate.config.redact import redact

_EXPECTED = {
    "int_type": "expected an integer",
    "int_parsing": "expected an integer",
    "int_from_float": "expected an integer",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "string_type": "expected a string",
    "list_type": "expected a list",
    "dict_type": "expected a mapping",
    "model_type": "expected a mapping",
    "model_attributes_type": "expected a mapping",
    "literal_error": None,
    "enum": None,
}


def join_path(prefix: str, loc: tuple[int | str, ...]) -> str:
    parts = [prefix] if prefix else []
    for item in loc:
        if isinstance(item, int):
            if parts:
                parts[-1] = f"{parts[-1]}[{item}]"
            else:
                parts.append(f"[{item}]")
        else:
            parts.append(str(item))
    return ".".join(parts) or "(top level)"


def format_validation_error(
    error: ValidationError, prefix: str, model: type[BaseModel] | None = None
) -> list[str]:
    """One line per problem, each naming the full key path from the top of the file."""
    lines = []
    for problem in error.errors(include_url=False):
        loc = tuple(item for item in problem["loc"] if not (isinstance(item, str) and "[" in item))
        path = join_path(prefix, loc)
        kind = problem["type"]
        secret_key = next((str(item) for item in reversed(loc) if isinstance(item, str)), "")
        given: Any = redact(problem.get("input"), secret_key)
        if kind == "extra_forbidden":
            known = _known_keys(model, loc[:-1]) if model is not None else []
            hint = f" (expected one of: {', '.join(known)})" if known else ""
            lines.append(f"{path}: unknown key{hint}")
        elif kind == "missing":
            lines.append(f"{path}: required key is missing")
        elif kind == "value_error":
            message = str(problem["msg"]).removeprefix("Value error, ")
            lines.append(f"{path}: {message}")
        else:
            expected = _EXPECTED.get(kind) or str(problem["msg"]).replace(
                "Input should be", "expected"
            )
            lines.append(f"{path}: {expected}, got {given!r}")
    return lines


def _known_keys(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """The keys a (possibly nested) model accepts at `loc`, for 'unknown key' hints."""
    current: Any = model
    for item in loc:
        if isinstance(item, int):
            continue
        fields = getattr(current, "model_fields", None)
        by_key = {info.alias or name: info for name, info in (fields or {}).items()}
        if item not in by_key:
            return []
        current = by_key[item].annotation
        current = _first_model(current)
        if current is None:
            return []
    fields = getattr(current, "model_fields", None)
    return sorted(info.alias or name for name, info in fields.items()) if fields else []


def _first_model(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _first_model(arg)
        if found is not None:
            return found
    return None
