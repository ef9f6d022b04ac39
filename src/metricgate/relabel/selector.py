"""Series selectors for vmagent's `if:` relabel option: `metric{label="v",l2=~"re",l3!="x"}`.

A selector is an optional metric name and a brace list of matchers (`=`, `!=`, `=~`, `!~`);
values are quoted with `"`, `'` or backticks, with Go string escapes. `if:` may also be a list of
selectors (or selectors joined with `or`): the rule applies when any of them matches.

Semantics are PromQL's: regex matchers are anchored at both ends (Go RE2 syntax, see `regex`), and
a missing label has the value "" (so `{l=""}` matches series without `l`).

Invariant: parsing either returns a `Selector` or raises `SelectorError` naming the position.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from metricgate.regex import GoRegex, RegexError

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_OPERATOR = re.compile(r"=~|!~|!=|=")
_SPACE = re.compile(r"\s*")
_OR = re.compile(r"\s*or\s+|\s*$")
_SIMPLE_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    "'": "'",
    '"': '"',
}
_HEX_LENGTHS = {"x": 2, "u": 4, "U": 8}


class SelectorError(ValueError):
    """A selector that does not parse; the message says where."""


@dataclass(frozen=True, slots=True)
class Matcher:
    """One `label op "value"` condition."""

    label: str
    op: str
    value: str
    regex: GoRegex | None = None

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.label, "")
        if self.regex is not None:
            return self.regex.matches(actual) == (self.op == "=~")
        return (actual == self.value) == (self.op == "=")

    def __str__(self) -> str:
        return f"{self.label}{self.op}{_quote(self.value)}"


@dataclass(frozen=True, slots=True)
class Selector:
    """Alternatives of matcher lists: matches when every matcher of any alternative matches."""

    alternatives: tuple[tuple[Matcher, ...], ...]

    def matches(self, labels: Mapping[str, str]) -> bool:
        return any(all(m.matches(labels) for m in matchers) for matchers in self.alternatives)

    def __str__(self) -> str:
        return " or ".join(
            "{" + ",".join(str(m) for m in matchers) + "}" for matchers in self.alternatives
        )


def parse_selector(text: str | list[str]) -> Selector:
    """Parse one selector, `a or b`, or a list of them (any may match)."""
    texts = [text] if isinstance(text, str) else text
    if not texts:
        raise SelectorError("expected at least one series selector")
    alternatives: list[tuple[Matcher, ...]] = []
    for item in texts:
        parser = _Parser(item)
        alternatives.extend(parser.parse())
    return Selector(tuple(alternatives))


def parse_series(text: str) -> dict[str, str]:
    """A concrete series written as a selector with `=` matchers only: `name{a="b"}`."""
    selector = parse_selector(text)
    if len(selector.alternatives) != 1:
        raise SelectorError(f"expected one series, got {text!r}")
    labels: dict[str, str] = {}
    for matcher in selector.alternatives[0]:
        if matcher.op != "=":
            raise SelectorError(f'expected label="value" pairs only, got {matcher}')
        if matcher.value:
            labels[matcher.label] = matcher.value
    return labels


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def error(self, expected: str) -> SelectorError:
        return SelectorError(
            f"invalid series selector {self.text!r}: expected {expected} at position {self.pos}"
        )

    def skip_space(self) -> None:
        self.pos = _SPACE.match(self.text, self.pos).end()  # type: ignore[union-attr]

    def parse(self) -> list[tuple[Matcher, ...]]:
        alternatives = []
        while True:
            alternatives.append(self.selector())
            separator = _OR.match(self.text, self.pos)
            if separator is None:
                raise self.error("',', '}' or 'or'")
            self.pos = separator.end()
            if self.pos >= len(self.text):
                return alternatives

    def selector(self) -> tuple[Matcher, ...]:
        self.skip_space()
        matchers: list[Matcher] = []
        name = _METRIC_NAME.match(self.text, self.pos)
        if name is not None and name.group(0) != "or":
            matchers.append(Matcher("__name__", "=", name.group(0)))
            self.pos = name.end()
            self.skip_space()
        if self.text.startswith("{", self.pos):
            self.pos += 1
            matchers.extend(self.matchers())
        elif not matchers:
            raise self.error("a metric name or '{'")
        return tuple(matchers)

    def matchers(self) -> list[Matcher]:
        found: list[Matcher] = []
        while True:
            self.skip_space()
            if self.text.startswith("}", self.pos):
                self.pos += 1
                return found
            label = _LABEL_NAME.match(self.text, self.pos)
            if label is None:
                raise self.error("a label name")
            self.pos = label.end()
            self.skip_space()
            op = _OPERATOR.match(self.text, self.pos)
            if op is None:
                raise self.error("one of = != =~ !~")
            self.pos = op.end()
            self.skip_space()
            value = self.string()
            regex = None
            if op.group(0) in ("=~", "!~"):
                try:
                    regex = GoRegex(value)
                except RegexError as exc:
                    raise SelectorError(f"invalid series selector {self.text!r}: {exc}") from None
            found.append(Matcher(label.group(0), op.group(0), value, regex))
            self.skip_space()
            if self.text.startswith(",", self.pos):
                self.pos += 1
            elif not self.text.startswith("}", self.pos):
                raise self.error("',' or '}'")

    def string(self) -> str:
        text, start = self.text, self.pos
        quote = text[start : start + 1]
        if quote not in ('"', "'", "`"):
            raise self.error("a quoted string")
        end = text.find(quote, start + 1)
        if quote == "`":
            if end < 0:
                raise self.error("a closing `")
            self.pos = end + 1
            return text[start + 1 : end]
        out: list[str] = []
        pos = start + 1
        while pos < len(text) and text[pos] != quote:
            char = text[pos]
            pos += 1
            if char != "\\":
                out.append(char)
                continue
            escape = text[pos : pos + 1]
            pos += 1
            if escape in _SIMPLE_ESCAPES:
                out.append(_SIMPLE_ESCAPES[escape])
            elif escape in _HEX_LENGTHS:
                digits = text[pos : pos + _HEX_LENGTHS[escape]]
                if len(digits) != _HEX_LENGTHS[escape] or not _is_hex(digits):
                    self.pos = pos
                    raise self.error(f"{_HEX_LENGTHS[escape]} hex digits after \\{escape}")
                out.append(chr(int(digits, 16)))
                pos += len(digits)
            elif escape in "01234567" and escape and _is_octal(text[pos - 1 : pos + 2]):
                out.append(chr(int(text[pos - 1 : pos + 2], 8)))
                pos += 2
            else:
                self.pos = pos
                raise self.error("a valid escape sequence")
        if pos >= len(text):
            self.pos = pos
            raise self.error(f"a closing {quote}")
        self.pos = pos + 1
        return "".join(out)


def _is_hex(digits: str) -> bool:
    return all(c in "0123456789abcdefABCDEF" for c in digits)


def _is_octal(digits: str) -> bool:
    return len(digits) == 3 and all(c in "01234567" for c in digits) and int(digits, 8) < 256


def _quote(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'
