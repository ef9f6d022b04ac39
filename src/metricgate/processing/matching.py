"""Selecting metrics and series by name, type and attributes, for `include`/`exclude` config.

`MatchProperties` is the config shape (the Collector's filter `MatchProperties`); `MetricMatcher`
is its compiled form. Patterns are compiled once, when the config is validated, in Go's syntax and
matched by RE2 in linear time (`metricgate.regex`, as everywhere a user writes a pattern), and a
`regexp` pattern must match the *whole* string (Prometheus' anchored convention; the Collector's
filterset searches instead, so `foo` there is `.*foo.*` here). Attribute values are compared in
their string form (`attribute_text`), so `value: 200` matches the attribute `"200"` and the
integer 200 alike.

Invariant: a matcher's answer depends only on the interned identity objects it is given (Metric,
Series), so callers cache verdicts per Metric and per Series.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from decimal import Decimal
from typing import Annotated, Any, Literal, NoReturn

from pydantic import BaseModel, BeforeValidator, ConfigDict, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError, ValidationError

from metricgate.model import Attributes, AttributeValue, Metric, MetricKind, Series
from metricgate.regex import GoRegex, RegexError

MatchType = Literal["strict", "regexp"]
MetricTypeName = Literal["gauge", "sum", "histogram", "exponential_histogram", "summary"]

Loc = tuple[int | str, ...]


def fail_at(loc: Loc, message: str, given: Any) -> NoReturn:
    """Raise a config error at `loc`, relative to the model being validated."""
    detail = PydanticCustomError("value_error", "{message}", {"message": message})
    raise ValidationError.from_exception_data(
        "config", [InitErrorDetails(type=detail, loc=loc, input=given)]
    )


def missing_at(loc: Loc, given: Any) -> NoReturn:
    """Raise "required key is missing" at `loc`."""
    raise ValidationError.from_exception_data(
        "config", [InitErrorDetails(type="missing", loc=loc, input=given)]
    )


def compile_pattern(pattern: str, loc: Loc, *, anchored: bool = True) -> GoRegex:
    """The Go regex `pattern` (whole-string unless not `anchored`); a bad one fails at `loc`."""
    try:
        return GoRegex(pattern, anchored)
    except RegexError as exc:
        fail_at(loc, str(exc), pattern)


def attribute_text(value: AttributeValue) -> str:
    """An attribute value as a string, the way OTLP's `Value.AsString` renders it."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "+Inf" if value > 0 else "-Inf"
        if value.is_integer() and abs(value) < 1e16:
            return str(int(value))
        return format(Decimal(repr(value)), "f")
    if value is None:
        return ""
    return json.dumps(_plain(value), separators=(",", ":"))


def _plain(value: AttributeValue) -> Any:
    return [_plain(item) for item in value] if isinstance(value, tuple) else value


def _scalar(value: Any) -> Any:
    if value is None or isinstance(value, str | bool | int | float):
        return value
    raise ValueError(f"expected a string, number or boolean, got {value!r}")


ScalarValue = Annotated[str | bool | int | float | None, BeforeValidator(_scalar)]
"""A config value compared with attribute values: one error message, not one per type."""


class NameMatcher:
    """Metric names, matched exactly (`strict`) or by whole-string regular expressions."""

    __slots__ = ("_names", "_patterns")

    def __init__(self, names: Sequence[str], match_type: MatchType) -> None:
        self._names = frozenset(names) if match_type == "strict" else frozenset()
        self._patterns = [GoRegex(n) for n in names] if match_type == "regexp" else []

    def matches(self, name: str) -> bool:
        if name in self._names:
            return True
        return any(p.matches(name) for p in self._patterns)


def check_names(names: Sequence[str], match_type: MatchType, loc: Loc) -> None:
    """Compile every `regexp` name so a bad one fails validation at `loc[i]`."""
    if match_type == "regexp":
        for i, name in enumerate(names):
            compile_pattern(name, (*loc, i))


class AttributeMatch(BaseModel):
    """One attribute condition: `key` present, and its value equal to (or matching) `value`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str
    value: ScalarValue = None
    """Absent: the key only has to be present."""
    match_type: MatchType | None = None
    """Defaults to the enclosing matcher's `match_type`."""


class AttributeMatcher:
    """A compiled `AttributeMatch`."""

    __slots__ = ("_key", "_regex", "_text")

    def __init__(self, match: AttributeMatch, default_type: MatchType) -> None:
        self._key = match.key
        self._text = None if match.value is None else attribute_text(match.value)
        regexp = (match.match_type or default_type) == "regexp"
        self._regex = GoRegex(self._text) if regexp and self._text is not None else None

    def matches(self, attributes: Attributes) -> bool:
        for key, value in attributes:
            if key == self._key:
                if self._regex is not None:
                    return self._regex.matches(attribute_text(value))
                return self._text is None or attribute_text(value) == self._text
        return False


class MatchProperties(BaseModel):
    """`include` / `exclude`: every condition given must hold (names and types: any of the list)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    match_type: MatchType = "strict"
    metric_names: list[str] = []
    metric_types: list[MetricTypeName] = []
    resource_attributes: list[AttributeMatch] = []
    """Conditions on the resource that produced the metric."""
    attributes: list[AttributeMatch] = []
    """Conditions on each data point's attributes."""

    @model_validator(mode="after")
    def _check(self) -> MatchProperties:
        if not (
            self.metric_names or self.metric_types or self.resource_attributes or self.attributes
        ):
            raise ValueError(
                "expected at least one of metric_names, metric_types, resource_attributes, "
                "attributes"
            )
        check_names(self.metric_names, self.match_type, ("metric_names",))
        for field in ("resource_attributes", "attributes"):
            for i, match in enumerate(getattr(self, field)):
                if (match.match_type or self.match_type) == "regexp" and match.value is not None:
                    if not isinstance(match.value, str):
                        fail_at((field, i, "value"), "expected a regular expression", match.value)
                    compile_pattern(match.value, (field, i, "value"))
        return self


class MetricMatcher:
    """A compiled `MatchProperties`: a metric-level part and a data-point-attribute part."""

    __slots__ = ("_attributes", "_kinds", "_names", "_resource")

    def __init__(self, props: MatchProperties) -> None:
        self._names = (
            NameMatcher(props.metric_names, props.match_type) if props.metric_names else None
        )
        self._kinds = frozenset(MetricKind[t.upper()] for t in props.metric_types) or None
        self._resource = tuple(
            AttributeMatcher(m, props.match_type) for m in props.resource_attributes
        )
        self._attributes = tuple(AttributeMatcher(m, props.match_type) for m in props.attributes)

    @property
    def has_attributes(self) -> bool:
        """True when the verdict also depends on each point's attributes."""
        return bool(self._attributes)

    def matches_metric(self, metric: Metric) -> bool:
        """Name, type and resource conditions."""
        if self._names is not None and not self._names.matches(metric.name):
            return False
        if self._kinds is not None and metric.kind not in self._kinds:
            return False
        resource = metric.resource.attributes
        return all(m.matches(resource) for m in self._resource)

    def matches_attributes(self, series: Series) -> bool:
        """Data point attribute conditions only; combine with `matches_metric`."""
        attributes = series.attributes
        return all(m.matches(attributes) for m in self._attributes)

    def matches(self, series: Series) -> bool:
        """The whole condition, for one series."""
        return self.matches_metric(series.metric) and self.matches_attributes(series)
