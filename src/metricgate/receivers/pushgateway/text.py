"""A small, strict parser of the Prometheus text exposition format 0.0.4.

`parse(text)` returns the metric families in order of appearance. Lines: `# HELP name text`
(escapes `\\\\` and `\\n`), `# TYPE name counter|gauge|histogram|summary|untyped`, other `#`
lines are comments, blank lines are skipped, and samples `name{label="value",...} value
[timestamp_ms]` (label values escape `\\\\`, `\\"` and `\\n`; a trailing comma is allowed; values
are Go floats: `NaN`, `+Inf`, `-Inf`, exponents). A sample belongs to the family TYPE declared
for its name, or for its base name when it ends in `_bucket`, `_sum` or `_count` (histograms) or
`_sum` or `_count` (summaries); a sample of no declared family is its own untyped family.

Errors raise `TextFormatError` with the 1-based line number: a second HELP or TYPE line for a
name, a TYPE after samples of its family, an unknown type, invalid metric or label names, a
label given twice, a series given twice, an unparsable value or timestamp, trailing garbage.

Invariant: a returned family's samples all belong to it by the rule above, and no two samples of a
parse share a name and label set.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Final

TYPES: Final = frozenset(("counter", "gauge", "histogram", "summary", "untyped"))
_SUFFIXES: Final = {
    "histogram": ("_bucket", "_sum", "_count"),
    "summary": ("_sum", "_count"),
}
_NAME: Final = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL: Final = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_WS: Final = re.compile(r"[ \t]*")
_TIMESTAMP: Final = re.compile(r"-?[0-9]+\Z")
_FLOAT: Final = re.compile(r"[+-]?(?:[0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?|[0-9]+\.)\Z")
_SPECIAL: Final = {"nan": math.nan, "+inf": math.inf, "inf": math.inf, "-inf": -math.inf}
_ESCAPES: Final = {"\\": "\\", '"': '"', "n": "\n"}

Labels = tuple[tuple[str, str], ...]


class TextFormatError(Exception):
    """The body is not valid text format; `line` is 1-based."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line


@dataclass(frozen=True, slots=True)
class Sample:
    """One sample line: its name, labels sorted by name, value, optional timestamp (ms)."""

    name: str
    labels: Labels
    value: float
    timestamp_ms: int | None
    line: int


@dataclass(slots=True)
class Family:
    """A metric family: its name, type (one of `TYPES`), HELP text and samples."""

    name: str
    type: str = "untyped"
    help: str = ""
    samples: list[Sample] = field(default_factory=list)
    typed: bool = False
    helped: bool = False


def parse(text: str) -> list[Family]:
    """The families of `text` (see the module docstring); raise `TextFormatError`."""
    families: dict[str, Family] = {}
    seen: set[tuple[str, Labels]] = set()
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.rstrip("\r").strip(" \t")
        if not line:
            continue
        if line.startswith("#"):
            _comment(line, number, families)
            continue
        sample = parse_sample(line, number)
        family = families.get(_family_name(sample.name, families)) or families.setdefault(
            sample.name, Family(sample.name)
        )
        key = (sample.name, sample.labels)
        if key in seen:
            raise TextFormatError(number, f"series {_show(sample)} appears twice")
        seen.add(key)
        family.samples.append(sample)
    return [family for family in families.values() if family.samples]


def _comment(line: str, number: int, families: dict[str, Family]) -> None:
    parts = line[1:].lstrip(" \t").split(None, 2)
    if len(parts) < 2 or parts[0] not in ("HELP", "TYPE"):
        return  # an ordinary comment
    keyword, name = parts[0], parts[1]
    if not _NAME.fullmatch(name):
        raise TextFormatError(number, f"invalid metric name {name!r} in {keyword} line")
    family = families.setdefault(name, Family(name))
    rest = parts[2] if len(parts) > 2 else ""
    if keyword == "HELP":
        if family.helped:
            raise TextFormatError(number, f"second HELP line for {name}")
        family.helped = True
        family.help = _unescape_help(rest, number)
        return
    if family.typed:
        raise TextFormatError(number, f"second TYPE line for {name}")
    if family.samples:
        raise TextFormatError(number, f"TYPE line for {name} after its samples")
    type_name = rest.strip()
    if type_name not in TYPES:
        raise TextFormatError(number, f"unknown type {type_name!r} for {name}")
    family.typed = True
    family.type = type_name


def _family_name(name: str, families: dict[str, Family]) -> str:
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix):
            base = families.get(name[: -len(suffix)])
            if base is not None and suffix in _SUFFIXES.get(base.type, ()):
                return base.name
    return name


def parse_sample(line: str, number: int) -> Sample:
    """One sample line (already stripped)."""
    match = _NAME.match(line)
    if match is None:
        raise TextFormatError(number, f"expected a metric name at the start of {line[:80]!r}")
    name = match.group()
    position = match.end()
    brace = _WS.match(line, position).end()  # type: ignore[union-attr]
    labels: dict[str, str] = {}
    if line[brace : brace + 1] == "{":
        position = _labels(line, brace + 1, number, labels)
    rest = line[position:]
    if rest and rest[0] not in " \t":
        raise TextFormatError(number, f"expected a space before the value, got {rest[:20]!r}")
    tokens = rest.split()
    if not tokens or len(tokens) > 2:
        raise TextFormatError(number, f"expected a value and an optional timestamp for {name}")
    value = parse_float(tokens[0], number)
    timestamp = None
    if len(tokens) == 2:
        if not _TIMESTAMP.match(tokens[1]):
            raise TextFormatError(number, f"invalid timestamp {tokens[1]!r}")
        timestamp = int(tokens[1])
    return Sample(name, tuple(sorted(labels.items())), value, timestamp, number)


def parse_float(token: str, number: int) -> float:
    """A Go-style float (`1`, `-2.5e3`, `NaN`, `+Inf`); no underscores, no hex."""
    special = _SPECIAL.get(token.lower())
    if special is not None:
        return special
    if not _FLOAT.match(token):
        raise TextFormatError(number, f"invalid value {token!r}")
    return float(token)


def _labels(line: str, position: int, number: int, labels: dict[str, str]) -> int:
    """Parse `name="value",...}` from `position`; return the index after the `}`."""
    while True:
        position = _WS.match(line, position).end()  # type: ignore[union-attr]
        if position < len(line) and line[position] == "}":
            return position + 1
        match = _LABEL.match(line, position)
        if match is None:
            raise TextFormatError(number, f"invalid label name at column {position + 1}")
        label = match.group()
        position = _WS.match(line, match.end()).end()  # type: ignore[union-attr]
        if line[position : position + 1] != "=":
            token = line[match.start() :].split("=", 1)[0].strip()
            if token != label and "=" in line[match.start() :]:
                raise TextFormatError(number, f"invalid label name {token!r}")
            raise TextFormatError(number, f"expected '=' after label {label}")
        position = _WS.match(line, position + 1).end()  # type: ignore[union-attr]
        if line[position : position + 1] != '"':
            raise TextFormatError(number, f"expected '\"' to open the value of label {label}")
        value, position = _quoted(line, position + 1, number, label)
        if label in labels:
            raise TextFormatError(number, f"label {label} given twice")
        labels[label] = value
        position = _WS.match(line, position).end()  # type: ignore[union-attr]
        separator = line[position : position + 1]
        if separator == ",":
            position += 1
        elif separator != "}":
            raise TextFormatError(number, f"expected ',' or '}}' after label {label}")


def _quoted(line: str, position: int, number: int, label: str) -> tuple[str, int]:
    out: list[str] = []
    while position < len(line):
        char = line[position]
        if char == '"':
            return "".join(out), position + 1
        if char == "\\":
            escaped = _ESCAPES.get(line[position + 1 : position + 2])
            if escaped is None:
                raise TextFormatError(number, f"invalid escape in the value of label {label}")
            out.append(escaped)
            position += 2
            continue
        out.append(char)
        position += 1
    raise TextFormatError(number, f"unterminated value of label {label}")


def _unescape_help(text: str, number: int) -> str:
    out: list[str] = []
    position = 0
    while position < len(text):
        char = text[position]
        if char == "\\" and position + 1 < len(text):
            following = text[position + 1]
            if following in "\\n":
                out.append("\n" if following == "n" else "\\")
                position += 2
                continue
        out.append(char)
        position += 1
    return "".join(out)


def _show(sample: Sample) -> str:
    labels = ",".join(f'{name}="{value}"' for name, value in sample.labels)
    return f"{sample.name}{{{labels}}}"
