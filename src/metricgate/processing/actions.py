"""Attribute actions (the Collector's `attraction`), shared by `attributes` and `resource`.

Each entry of `actions` is applied in order to one attribute set:
- `insert`: set `key` to `value` (or to the value of `from_attribute`) only if `key` is absent.
- `update`: the same, only if `key` is present. `upsert`: always.
- `delete`: remove `key`, and every key `pattern` matches.
- `hash`: replace the value of `key` (and of every key `pattern` matches) with the hex SHA-256 of
  its bytes, as the Collector does: UTF-8 for strings, one byte 0/1 for booleans, 8 bytes
  little-endian for integers (two's complement) and doubles (IEEE 754); other kinds, and the empty
  string, hash to "".
- `extract`: search `key`'s string value with `pattern` and set one attribute per named group
  (overwriting; a group that did not take part becomes "").
- `convert`: change `key`'s value to `converted_type` (`int`, `double`, `string`) where possible.
`pattern` is Go (RE2) syntax, matched in linear time (`metricgate.regex`), and searched anywhere
in the key (or value, for `extract`), like the Collector's Go `MatchString`; anchor it with
`^...$` to match whole keys. Action names are case-insensitive.

Invariant: `Actions.apply` is a pure function of its input, so results are cached per input
Series or Resource; it returns the input tuple itself when nothing changed.
"""

from __future__ import annotations

import hashlib
import re
import struct
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, model_validator

from metricgate.model import Attributes, AttributeValue
from metricgate.processing.matching import attribute_text, compile_pattern, fail_at, missing_at
from metricgate.regex import GoRegex

ActionName = Literal["insert", "update", "upsert", "delete", "hash", "extract", "convert"]
Scalar = str | bool | int | float


def _config_value_check(value: Any) -> Any:
    if value is None or isinstance(value, Scalar):
        return value
    if isinstance(value, list) and all(isinstance(item, Scalar) for item in value):
        return value
    raise ValueError(f"expected a string, number, boolean or a list of them, got {value!r}")


ConfigValue = Annotated[Scalar | list[Scalar] | None, BeforeValidator(_config_value_check)]

_INT64 = re.compile(r"[+-]?[0-9]+")


def _lowercase(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


class AttributeAction(BaseModel):
    """One entry of `actions` (see the module docstring for what each action does)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = ""
    action: Annotated[ActionName, BeforeValidator(_lowercase)]
    value: ConfigValue = None
    from_attribute: str = ""
    pattern: str = ""
    converted_type: Literal["int", "double", "string"] | None = None

    @model_validator(mode="after")
    def _check(self) -> AttributeAction:
        action = self.action
        sources = [f for f in ("value", "from_attribute") if self._given(f)]
        unused: list[str] = []
        if action in ("delete", "hash"):
            if not self.key and not self.pattern:
                missing_at(("key",), None)
            unused = [*sources, "converted_type"]
        else:
            if not self.key:
                missing_at(("key",), None)
            if action in ("insert", "update", "upsert"):
                if not sources:
                    fail_at((), f"expected value or from_attribute for action {action!r}", None)
                if len(sources) > 1:
                    fail_at(("from_attribute",), "expected value or from_attribute, not both", "")
                unused = ["pattern", "converted_type"]
            elif action == "extract":
                if not self.pattern:
                    missing_at(("pattern",), None)
                unused = [*sources, "converted_type"]
            else:
                if self.converted_type is None:
                    missing_at(("converted_type",), None)
                unused = [*sources, "pattern"]
        for name in unused:
            if self._given(name):
                fail_at((name,), f"not used by action {action!r}", getattr(self, name))
        if self.pattern:
            regex = compile_pattern(self.pattern, ("pattern",), anchored=False)
            names = regex.group_names[1:]
            if action == "extract" and (not names or None in names):
                fail_at(("pattern",), "expected only named groups, (?P<name>...)", self.pattern)
        return self

    def _given(self, name: str) -> bool:
        value = getattr(self, name)
        return value is not None if name == "value" else bool(value)


Step = Callable[[dict[str, AttributeValue]], None]


class Actions:
    """A compiled `actions` list."""

    __slots__ = ("_steps",)

    def __init__(self, actions: Sequence[AttributeAction]) -> None:
        self._steps = [_compile(a) for a in actions]

    def apply(self, attributes: Attributes) -> Attributes:
        """The attributes after every action, sorted by key; `attributes` itself if unchanged."""
        pairs = dict(attributes)
        for step in self._steps:
            step(pairs)
        result = tuple(sorted(pairs.items()))
        return attributes if result == attributes else result


def hash_value(value: AttributeValue) -> str:
    """Hex SHA-256 of the value's bytes, byte-compatible with the Collector's `hash` action."""
    if isinstance(value, bool):
        data = b"\x01" if value else b"\x00"
    elif isinstance(value, int):
        data = (value & 0xFFFF_FFFF_FFFF_FFFF).to_bytes(8, "little")
    elif isinstance(value, float):
        data = struct.pack("<d", value)
    elif isinstance(value, str):
        data = value.encode()
    else:
        data = b""
    return hashlib.sha256(data).hexdigest() if data else ""


def convert_value(value: AttributeValue, to: str) -> AttributeValue:
    """`value` as `to` (`int`, `double`, `string`), or unchanged when it does not convert."""
    if to == "string":
        return value if isinstance(value, str) else attribute_text(value)
    if isinstance(value, bool):
        return int(value) if to == "int" else float(value)
    if to == "int":
        if isinstance(value, float) and value == value and abs(value) != float("inf"):
            return int(value)
        if isinstance(value, str) and _INT64.fullmatch(value):
            number = int(value)
            return number if -(2**63) <= number < 2**63 else value
        return value
    if isinstance(value, int):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _config_value(value: Scalar | list[Scalar]) -> AttributeValue:
    return tuple(value) if isinstance(value, list) else value


def _compile(action: AttributeAction) -> Step:
    key = action.key
    regex = GoRegex(action.pattern, anchored=False) if action.pattern else None
    name = action.action
    if name in ("insert", "update", "upsert"):
        return _setter(name, key, action)
    if name == "delete":

        def delete(pairs: dict[str, AttributeValue]) -> None:
            pairs.pop(key, None)
            if regex is not None:
                for k in [k for k in pairs if regex.search(k)]:
                    del pairs[k]

        return delete
    if name == "hash":

        def hash_(pairs: dict[str, AttributeValue]) -> None:
            keys = {key} if key in pairs else set()
            if regex is not None:
                keys.update(k for k in pairs if regex.search(k))
            for k in keys:
                pairs[k] = hash_value(pairs[k])

        return hash_
    if name == "extract":
        assert regex is not None
        # Go's Expand of `${name}`: a group that did not take part gives "".
        groups = [
            (name, regex.template(f"${{{name}}}"))
            for name in dict.fromkeys(name for name in regex.group_names if name is not None)
        ]

        def extract(pairs: dict[str, AttributeValue]) -> None:
            source = pairs.get(key)
            found = regex.search(source) if isinstance(source, str) else None
            if found is not None:
                for group, expand in groups:
                    pairs[group] = expand(found)

        return extract
    to = action.converted_type or "string"

    def convert(pairs: dict[str, AttributeValue]) -> None:
        if key in pairs:
            pairs[key] = convert_value(pairs[key], to)

    return convert


def _setter(name: str, key: str, action: AttributeAction) -> Step:
    constant = _config_value(action.value) if action.value is not None else None
    source = action.from_attribute
    insert, update = name in ("insert", "upsert"), name in ("update", "upsert")

    def set_(pairs: dict[str, AttributeValue]) -> None:
        if (key in pairs and not update) or (key not in pairs and not insert):
            return
        if source:
            if source in pairs:
                pairs[key] = pairs[source]
        else:
            pairs[key] = constant

    return set_
