"""One relabel rule's config: Prometheus `relabel_config`, plus vmagent's extensions.

Keys, defaults and checks are Prometheus' (`separator: ";"`, `regex: "(.*)"`, `replacement: "$1"`,
`action: replace`; which actions need `target_label` or `modulus`, which forbid other keys), so a
rule list pasted from a Prometheus or vmagent config is accepted or refused the same way, with the
error naming the key: `processors.relabel.relabel_configs[2].modulus: required for action hashmod`
(the `relabel` processor's and the `prometheus` receiver's rule lists share this model).

vmagent's additions: `if:` (a series selector, or a list of them) on any rule; `regex` as a list,
joined with `|` like vmagent; the actions `keep_metrics`, `drop_metrics`, `labelmap_all`,
`replace_all`, `keep_if_equal` and `drop_if_equal`.

Invariant: a config that validates compiles into rules without error (`rules.compile_rules`).
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from typing import Any, NoReturn

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError, ValidationError

from metricgate.regex import GoRegex, RegexError
from metricgate.relabel.selector import Selector, SelectorError, parse_selector
from metricgate.translate.names import LABEL_NAME_RE

PROMETHEUS_ACTIONS = (
    "replace",
    "keep",
    "drop",
    "keepequal",
    "dropequal",
    "hashmod",
    "labelmap",
    "labeldrop",
    "labelkeep",
    "lowercase",
    "uppercase",
)
VMAGENT_ACTIONS = (
    "keep_metrics",
    "drop_metrics",
    "labelmap_all",
    "replace_all",
    "keep_if_equal",
    "drop_if_equal",
)
ACTIONS = PROMETHEUS_ACTIONS + VMAGENT_ACTIONS
UNANCHORED_ACTIONS = frozenset(("labelmap_all", "replace_all"))
"""vmagent applies these regexes to every substring, so they are not anchored."""

DEFAULT_REGEX = "(.*)"
DEFAULT_SEPARATOR = ";"
DEFAULT_REPLACEMENT = "$1"

_NEEDS_TARGET = frozenset(
    ("replace", "hashmod", "lowercase", "uppercase", "keepequal", "dropequal", "replace_all")
)
_NO_REPLACEMENT = frozenset(("lowercase", "uppercase", "keepequal", "dropequal"))
_REGEX_ONLY = frozenset(("labeldrop", "labelkeep"))
_EQUAL = frozenset(("keepequal", "dropequal"))
_IF_EQUAL = frozenset(("keep_if_equal", "drop_if_equal"))
_METRICS = frozenset(("keep_metrics", "drop_metrics"))


def fail_at(key: str, message: str, given: Any) -> NoReturn:
    """A config error at `key` of the model being validated (the loader prefixes the path)."""
    detail = PydanticCustomError("value_error", "{message}", {"message": message})
    raise ValidationError.from_exception_data(
        "relabel", [InitErrorDetails(type=detail, loc=(key,), input=given)]
    )


@lru_cache(maxsize=4096)
def compile_regex(source: str, anchored: bool = True) -> GoRegex:
    """A compiled Go regex, shared by validation and the rules built from a config."""
    return GoRegex(source, anchored)


def is_template_target(value: str) -> bool:
    """Prometheus' check for a target label or labelmap replacement with `$` references."""
    return compile_regex(r"(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+").matches(value)


class RelabelRuleConfig(BaseModel):
    """One entry of `relabel_configs` (Prometheus `relabel_config`, vmagent extensions)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    source_labels: list[str] | None = None
    """Labels whose values are joined with `separator`; None when the key is absent."""
    separator: str = DEFAULT_SEPARATOR
    target_label: str = ""
    regex: str | None = None
    """The regex as written (a list is joined with `|`); None means the default `(.*)`."""
    modulus: int = Field(default=0, ge=0)
    replacement: str = DEFAULT_REPLACEMENT
    action: str = "replace"
    if_: str | list[str] | None = Field(default=None, alias="if")

    @field_validator("regex", mode="before")
    @classmethod
    def _regex_text(cls, value: Any) -> Any:
        if isinstance(value, list):
            return "|".join(str(_scalar_text(item)) for item in value)
        return _scalar_text(value)

    @field_validator("replacement", "separator", "target_label", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        return "" if value is None else _scalar_text(value)

    @field_validator("action", mode="before")
    @classmethod
    def _action(cls, value: Any) -> Any:
        if value is None:
            return "replace"
        if not isinstance(value, str) or value.lower() not in ACTIONS:
            raise ValueError(
                f"unknown relabel action {value!r} (expected one of: {', '.join(ACTIONS)})"
            )
        return value.lower()

    @property
    def regex_source(self) -> str:
        return DEFAULT_REGEX if self.regex is None else self.regex

    @property
    def compiled_regex(self) -> GoRegex:
        return compile_regex(self.regex_source, self.action not in UNANCHORED_ACTIONS)

    @property
    def selector(self) -> Selector | None:
        return None if self.if_ is None else parse_selector(self.if_)

    @model_validator(mode="after")
    def _check(self) -> RelabelRuleConfig:
        action = self.action
        try:
            _ = self.compiled_regex
        except RegexError as exc:
            fail_at("regex", str(exc), self.regex)
        if self.if_ is not None:
            try:
                _ = self.selector
            except SelectorError as exc:
                fail_at("if", str(exc), self.if_)
        for name in self.source_labels or ():
            if not LABEL_NAME_RE.match(name):
                fail_at("source_labels", f"invalid label name {name!r}", self.source_labels)
        if action == "hashmod" and self.modulus == 0:
            fail_at("modulus", "required for action hashmod (a positive integer)", 0)
        if action in _NEEDS_TARGET:
            self._check_target()
        if action in _NO_REPLACEMENT and self.replacement != DEFAULT_REPLACEMENT:
            fail_at("replacement", f"not allowed for action {action}", self.replacement)
        if action == "labelmap" and not is_template_target(self.replacement):
            fail_at(
                "replacement",
                f"{self.replacement!r} is not a valid label name or $-template for labelmap",
                self.replacement,
            )
        if action in _EQUAL or action in _REGEX_ONLY or action in _METRICS:
            self._check_exclusive()
        if action in _IF_EQUAL and len(self.source_labels or ()) < 2:
            fail_at(
                "source_labels",
                f"at least two labels are required for action {action}",
                self.source_labels,
            )
        if action in _METRICS and self.regex is None:
            fail_at("regex", f"required for action {action}", None)
        return self

    def _check_target(self) -> None:
        action, target = self.action, self.target_label
        if not target:
            fail_at("target_label", f"required for action {action}", None)
        templated = action == "replace" and "$" in target
        valid = is_template_target(target) if templated else LABEL_NAME_RE.match(target)
        if not valid:
            fail_at(
                "target_label",
                f"{target!r} is not a valid label name for action {action}",
                target,
            )

    def _check_exclusive(self) -> None:
        """Keys Prometheus (and vmagent, for *_metrics) refuses next to these actions."""
        action = self.action
        forbidden = {
            "regex": self.regex is not None and action in _EQUAL,
            "modulus": self.modulus != 0,
            "separator": self.separator != DEFAULT_SEPARATOR,
            "replacement": self.replacement != DEFAULT_REPLACEMENT,
            "source_labels": self.source_labels is not None and action not in _EQUAL,
            "target_label": bool(self.target_label) and action not in _EQUAL,
        }
        for key, present in forbidden.items():
            if present:
                fail_at(key, f"not allowed for action {action}", getattr(self, key))


def _scalar_text(value: Any) -> Any:
    """A YAML number or boolean as the string Go's YAML decoder would make of it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format(Decimal(repr(value)).normalize(), "f") if value == value else "NaN"
    return value
