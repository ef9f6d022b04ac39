"""The text formats: Prometheus text 0.0.4 and OpenMetrics 1.0, parsed line by line.

`TextParser(openmetrics=...)` parses pages of one source (a scrape target, a push) and remembers
each series line it has seen, so a page of known series costs, per sample line, two string
partitions, a dict lookup and a `float()`: the labels are parsed only the first time a series
appears (the scrape hot path; measured in `bench/bench_scrape.py`).

Grammar (both formats): `# HELP name text`, `# TYPE name type` and samples
`name{label="value",...} value [timestamp]`; label values escape `\\\\`, `\\"` and `\\n` (any
other escape is an error); values are Go floats (`1`, `-2.5e3`, `NaN`, `+Inf`; out of range, hex or
`_` are errors).
- Text 0.0.4 is lenient where Prometheus is: other `#` lines are comments, blank lines and runs of
  blanks or tabs are allowed, a trailing comma may close the labels, timestamps are integer ms.
- OpenMetrics is strict: only `# TYPE`, `# HELP`, `# UNIT` (the family name must end in `_<unit>`)
  and a final `# EOF` (nothing but one newline after it); single spaces; no blank lines or
  trailing commas; timestamps in (float) seconds; exemplars (` # {labels} value [timestamp]`, at
  most 128 characters of label names and values) on counter `_total` and histogram `_bucket`
  samples only; a sample must fit its family's type (a counter's samples are `_total` and
  `_created`).

Errors raise `ExpositionError` with the 1-based line: a second HELP/TYPE/UNIT for a name, a TYPE
after samples of its family, an unknown type, invalid names, a label given twice, an unparsable
value or timestamp, trailing garbage. A series repeated in a page is not an error here: its later
samples are left out and their lines listed in `Page.duplicates` (Prometheus keeps the first
sample and counts the rest; the Pushgateway refuses the push).

A page whose text is the previous page's is that page again (a copy of its lists). A page laid
out exactly like the parser's previous one (same line count, metadata, blank lines and
series at the same places; only values differ) is read by slicing each sample line at the known
offset and one `map(float, ...)` (`_Template`), and returns the previous page's `shape`.

Invariant: a cached series key is stored only after a full parse showed that the fast path's cut
of that line ends exactly where the series ends, so a cache hit parses exactly as the full parse
would; a replayed page is exactly what the full parse would return.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from operator import getitem, itemgetter
from typing import Final

from metricgate.wire.exposition.page import (
    OPENMETRICS_TYPES,
    TEXT_TYPES,
    Exemplar,
    ExpositionError,
    FamilyMeta,
    Labels,
    Page,
    SeriesLine,
    resolve,
)

_NAME: Final = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL: Final = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_BLANKS: Final = re.compile(r"[ \t]*")
_INT: Final = re.compile(r"[+-]?[0-9]+\Z")
_FLOAT: Final = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")
_SPECIAL: Final = re.compile(r"(?i:[+-]?inf(?:inity)?|nan)\Z")
_ESCAPES: Final = {"\\": "\\", '"': '"', "n": "\n"}
_INF: Final = math.inf
_EXEMPLAR_RUNES: Final = 128
_EXEMPLAR_ROLES: Final = {"counter": "_total", "histogram": "_bucket", "gaugehistogram": "_bucket"}
_NEEDS_SUFFIX: Final = frozenset(("counter", "histogram", "gaugehistogram", "info"))
DEFAULT_MAX_SERIES: Final = 200_000


class TextParser:
    """Parses the pages of one source, remembering its series (see the module docstring)."""

    def __init__(self, *, openmetrics: bool = False, max_series: int = DEFAULT_MAX_SERIES) -> None:
        self.openmetrics = openmetrics
        self.max_series = max_series
        self._heads: dict[str, SeriesLine] = {}
        """Series text of lines `<series> <value>` (cut at the last space) -> the series."""
        self._keys: dict[str, SeriesLine] = {}
        """Fast-path cut of other lines (see `_cut`) -> their series, verified by a full parse."""
        self._series: dict[tuple[str, Labels], SeriesLine] = {}
        self._meta: dict[str, tuple[str, str, str]] = {}
        """Metadata line -> (keyword, name, text)."""
        self._checked: tuple[object, ...] | None = None
        self._duplicates: list[int] = []
        self._meta_lines: tuple[int, ...] = ()
        self._template: _Template | None = None
        self._last: tuple[str, Page] | None = None
        """The last page parsed and its text: the same text again is the same page."""

    def parse(self, text: str) -> Page:
        """The page `text` (see the module docstring); raises `ExpositionError`."""
        last = self._last
        if last is not None and last[0] == text:
            return _copy(last[1])
        self._last = None
        page = self._parse(text)
        self._last = (text, page)
        return _copy(page)  # the parser keeps `page` (and its template may): callers get a copy

    def _parse(self, text: str) -> Page:
        openmetrics = self.openmetrics
        lines = text.split("\n")
        if openmetrics:
            _strip_eof(lines)
        elif lines and not lines[-1]:
            lines.pop()
        template = self._template
        if template is not None:
            replayed = template.replay(lines)
            if replayed is not None:
                return replayed
        page = Page(openmetrics)
        entries, values, numbers = page.entries, page.values, page.lines
        add_entry, add_value, add_number = entries.append, values.append, numbers.append
        heads_get, keys_get = self._heads.get, self._keys.get
        meta: list[tuple[int, str]] = []
        inf = _INF
        for number, line in enumerate(lines, 1):
            if not line:
                if openmetrics:
                    raise ExpositionError(number, "blank lines are not allowed in OpenMetrics")
                continue
            if line[0] == "#":
                meta.append((number, line))
                continue
            head, _, rest = line.rpartition(" ")
            entry = heads_get(head)
            if entry is None:
                head, _, rest = line.partition(" ")
                if "{" in head:
                    head, _, rest = line.partition("} ")
                entry = keys_get(head)
            if entry is not None and "_" not in rest and rest.isascii():
                try:
                    value = float(rest)
                except ValueError:
                    pass
                else:
                    if -inf < value < inf and not (openmetrics and rest != rest.strip()):
                        add_entry(entry)
                        add_value(value)
                        add_number(number)
                        continue
            self._slow_line(page, line, number)
        self._metadata(page, meta)
        self._check(page)
        self._template = _Template.build(page, lines, self._heads)
        return page

    def _slow_line(self, page: Page, line: str, number: int) -> None:
        """A sample line the fast path did not take: parse it fully, remember its series."""
        stripped = line if self.openmetrics else line.rstrip("\r").strip(" \t")
        if not stripped:
            return
        if stripped[0] == "#":
            raise ExpositionError(number, "a comment must start at the beginning of its line")
        name, labels, end = _series(stripped, number, self.openmetrics)
        entry = self._entry(name, labels)
        if stripped == line and _cut(line) == line[: end - 1 if line[end - 1] == "}" else end]:
            keys = self._keys
            if len(keys) >= self.max_series:
                keys.clear()
            keys[_cut(line)] = entry
        value, stamp, exemplar = _tail(stripped[end:], number, name, self.openmetrics)
        if stripped == line and stamp is None and exemplar is None:
            head = line.rpartition(" ")[0]
            if head == line[:end] and len(head) + 1 < len(line):
                heads = self._heads
                if len(heads) >= self.max_series:
                    heads.clear()
                heads[head] = entry
        index = len(page.entries)
        page.entries.append(entry)
        page.values.append(value)
        page.lines.append(number)
        if stamp is not None:
            if page.timestamps is None:
                page.timestamps = {}
            page.timestamps[index] = stamp
        if exemplar is not None:
            if page.exemplars is None:
                page.exemplars = {}
            page.exemplars[index] = exemplar

    def _entry(self, name: str, labels: Labels) -> SeriesLine:
        key = (name, labels)
        entry = self._series.get(key)
        if entry is None:
            if len(self._series) >= self.max_series:
                self._series.clear()
                self._keys.clear()
                self._heads.clear()
            entry = self._series[key] = SeriesLine(name, labels)
        return entry

    def _metadata(self, page: Page, meta: list[tuple[int, str]]) -> None:
        families = page.families
        cache = self._meta
        schema = []
        for number, line in meta:
            parsed = cache.get(line)
            if parsed is None:
                parsed = _comment(line, number, self.openmetrics)
                if len(cache) >= self.max_series:
                    cache.clear()
                cache[line] = parsed
            keyword, name, text = parsed
            if not keyword:
                continue
            schema.append(line)
            family = families.get(name)
            if family is None:
                family = families[name] = FamilyMeta(
                    name, "unknown" if self.openmetrics else "untyped", line=number
                )
            _apply(family, keyword, text, number, self.openmetrics)
        page.schema = tuple(schema)
        self._meta_lines = tuple(number for number, _ in meta)

    def _check(self, page: Page) -> None:
        """Family checks that depend on the page's shape only; skipped when the shape repeats."""
        shape = (page.schema, self._meta_lines, tuple(page.entries))
        if shape != self._checked:
            self._duplicates = _structure(page)
            self._checked = shape
        page.shape = self._checked
        if self._duplicates:
            page.duplicates = [page.lines[i] for i in self._duplicates]
            _remove(page, self._duplicates)
        if page.exemplars:
            for index in page.exemplars:
                family, role = page.resolve(page.entries[index])
                if _EXEMPLAR_ROLES.get(family.type) != role:
                    name = page.entries[index].name
                    raise ExpositionError(page.lines[index], f"exemplars are not allowed on {name}")


class _Template:
    """The layout of the last page, to read the next page of the same layout by slicing: same
    line count, the same metadata and blank lines, and each sample line `<series> <value>` with
    the same series text at the same place. Anything else takes the full parse, so a replayed
    page is exactly what the full parse gives."""

    __slots__ = ("_fixed", "_get_fixed", "_get_samples", "_page", "_prefixes", "_size", "_values")

    def __init__(self, page: Page, size: int, fixed: list[int], samples: list[int]) -> None:
        self._page = page
        self._size = size
        self._get_fixed = _picker(fixed)
        self._get_samples = _picker(samples)
        self._fixed: tuple[str, ...] = ()
        self._prefixes: list[str] = []
        self._values: list[slice] = []
        """Where each sample line's value starts."""

    @classmethod
    def build(cls, page: Page, lines: list[str], heads: dict[str, SeriesLine]) -> _Template | None:
        if page.timestamps or page.exemplars or page.duplicates or not page.entries:
            return None
        positions = [number - 1 for number in page.lines]
        texts = [lines[i] for i in positions]
        prefixes, offsets = [], []
        for entry, text in zip(page.entries, texts, strict=True):
            head = text.rpartition(" ")[0]
            if heads.get(head) is not entry:
                return None
            prefixes.append(text[: len(head) + 1])
            offsets.append(len(head) + 1)
        taken = set(positions)
        fixed = [i for i in range(len(lines)) if i not in taken]
        template = cls(page, len(lines), fixed, positions)
        template._fixed = template._get_fixed(lines)
        template._prefixes = prefixes
        template._values = [slice(offset, None) for offset in offsets]
        return template

    def replay(self, lines: list[str]) -> Page | None:
        if len(lines) != self._size or self._get_fixed(lines) != self._fixed:
            return None
        texts = self._get_samples(lines)
        if not all(map(str.startswith, texts, self._prefixes)):
            return None
        values_text: list[str] = list(map(getitem, texts, self._values))
        joined = "\n".join(values_text)
        if not joined.isascii() or any(c in joined for c in " \t\r_"):
            return None
        try:
            values = list(map(float, values_text))
        except ValueError:
            return None
        if _INF in values or -_INF in values:
            return None  # an infinity, or a value out of range: the full parse decides
        page = self._page
        return Page(
            page.openmetrics,
            list(page.entries),
            values,
            list(page.lines),
            families=page.families,
            shape=page.shape,
            schema=page.schema,
        )


def _copy(page: Page) -> Page:
    """A page equal to `page` that shares none of its lists, so callers may change either."""
    return Page(
        page.openmetrics,
        list(page.entries),
        list(page.values),
        list(page.lines),
        timestamps=None if page.timestamps is None else dict(page.timestamps),
        exemplars=None if page.exemplars is None else dict(page.exemplars),
        families=page.families,
        duplicates=list(page.duplicates),
        shape=page.shape,
        schema=page.schema,
    )


def _picker(indexes: list[int]) -> Callable[[list[str]], tuple[str, ...]]:
    """`itemgetter` that always returns a tuple."""
    if len(indexes) == 1:
        only = indexes[0]
        return lambda items: (items[only],)
    if not indexes:
        return lambda items: ()
    return itemgetter(*indexes)


def _strip_eof(lines: list[str]) -> None:
    if lines and lines[-1] == "":
        lines.pop()
    if not lines or lines[-1] != "# EOF":
        if "# EOF" in lines:
            at = lines.index("# EOF") + 2
            raise ExpositionError(at, "content after # EOF")
        raise ExpositionError(len(lines), "an OpenMetrics page must end with # EOF")
    lines.pop()


def _cut(line: str) -> str:
    """What the fast path looks up for `line` (see `TextParser.parse`)."""
    head = line.partition(" ")[0]
    return line.partition("} ")[0] if "{" in head else head


def _series(line: str, number: int, openmetrics: bool) -> tuple[str, Labels, int]:
    """The sample name and sorted labels at the start of `line`, and where they end."""
    match = _NAME.match(line)
    if match is None:
        raise ExpositionError(number, f"expected a metric name at the start of {line[:80]!r}")
    name = match.group()
    position = match.end()
    if not openmetrics:
        position = _BLANKS.match(line, position).end()  # type: ignore[union-attr]
    if line[position : position + 1] != "{":
        return name, (), match.end()
    labels: dict[str, str] = {}
    end = _labels(line, position + 1, number, labels, openmetrics)
    return name, tuple(sorted(labels.items())), end


def _labels(
    line: str, position: int, number: int, labels: dict[str, str], openmetrics: bool
) -> int:
    """Parse `name="value",...}` from `position`; return the index after the `}`."""
    blanks = _BLANKS.match
    first = True
    while True:
        if not openmetrics:
            position = blanks(line, position).end()  # type: ignore[union-attr]
        if line[position : position + 1] == "}" and (first or not openmetrics):
            return position + 1
        match = _LABEL.match(line, position)
        if match is None:
            raise ExpositionError(number, f"invalid label name at column {position + 1}")
        label = match.group()
        position = match.end()
        if not openmetrics:
            position = blanks(line, position).end()  # type: ignore[union-attr]
        if line[position : position + 1] != "=":
            raise ExpositionError(number, f"expected '=' after label name {label}")
        position += 1
        if not openmetrics:
            position = blanks(line, position).end()  # type: ignore[union-attr]
        if line[position : position + 1] != '"':
            raise ExpositionError(number, f"expected '\"' to open the value of label {label}")
        value, position = _quoted(line, position + 1, number, label)
        if label in labels:
            raise ExpositionError(number, f"label {label} given twice")
        labels[label] = value
        first = False
        if not openmetrics:
            position = blanks(line, position).end()  # type: ignore[union-attr]
        separator = line[position : position + 1]
        if separator == ",":
            position += 1
        elif separator == "}":
            return position + 1
        else:
            raise ExpositionError(number, f"expected ',' or '}}' after the value of label {label}")


def _quoted(line: str, position: int, number: int, label: str) -> tuple[str, int]:
    end = line.find('"', position)
    if end >= 0 and line.find("\\", position, end) < 0:
        return line[position:end], end + 1
    out: list[str] = []
    while position < len(line):
        char = line[position]
        if char == '"':
            return "".join(out), position + 1
        if char == "\\":
            escaped = _ESCAPES.get(line[position + 1 : position + 2])
            if escaped is None:
                raise ExpositionError(number, f"invalid escape in the value of label {label}")
            out.append(escaped)
            position += 2
            continue
        out.append(char)
        position += 1
    raise ExpositionError(number, f"unterminated value of label {label}")


def _tail(
    rest: str, number: int, name: str, openmetrics: bool
) -> tuple[float, int | None, Exemplar | None]:
    """Value, timestamp (ms) and exemplar after the series."""
    exemplar = None
    if openmetrics:
        rest, mark, exemplar_text = rest.partition(" # ")
        if mark:
            exemplar = _exemplar(exemplar_text, number)
        if not rest.startswith(" ") or rest.startswith("  "):
            raise ExpositionError(number, f"expected one space before the value of {name}")
        tokens = rest[1:].split(" ")
    else:
        if rest and rest[0] not in " \t":
            raise ExpositionError(number, f"expected a space before the value, got {rest[:20]!r}")
        tokens = rest.split()
    if not tokens or len(tokens) > 2 or not all(tokens):
        raise ExpositionError(number, f"expected a value and an optional timestamp for {name}")
    value = parse_float(tokens[0], number)
    stamp = None
    if len(tokens) == 2:
        stamp = _timestamp(tokens[1], number, openmetrics)
    return value, stamp, exemplar


def _timestamp(token: str, number: int, openmetrics: bool) -> int:
    if not openmetrics:
        if not _INT.match(token):
            raise ExpositionError(number, f"invalid timestamp {token!r} (integer milliseconds)")
        return int(token)
    seconds = parse_float(token, number)
    if not math.isfinite(seconds):
        raise ExpositionError(number, f"invalid timestamp {token!r}")
    return round(seconds * 1000)


def parse_float(token: str, number: int) -> float:
    """A Go float (`1`, `-2.5e3`, `NaN`, `+Inf`); no hex, no `_`, no out of range values."""
    if _FLOAT.match(token):
        value = float(token)
        if math.isinf(value):
            raise ExpositionError(number, f"value {token!r} is out of range")
        return value
    if _SPECIAL.match(token):
        return float(token)
    raise ExpositionError(number, f"invalid value {token!r}")


def _exemplar(text: str, number: int) -> Exemplar:
    if not text.startswith("{"):
        raise ExpositionError(number, "expected '{' to open the exemplar's labels")
    labels: dict[str, str] = {}
    end = _labels(text, 1, number, labels, True)
    if sum(len(n) + len(v) for n, v in labels.items()) > _EXEMPLAR_RUNES:
        raise ExpositionError(number, "exemplar labels are longer than 128 characters")
    tokens = text[end:].split(" ")
    if len(tokens) not in (2, 3) or tokens[0] or not all(tokens[1:]):
        raise ExpositionError(number, "expected an exemplar value and an optional timestamp")
    value = parse_float(tokens[1], number)
    stamp = _timestamp(tokens[2], number, True) if len(tokens) == 3 else None
    return Exemplar(tuple(sorted(labels.items())), value, stamp)


def _comment(line: str, number: int, openmetrics: bool) -> tuple[str, str, str]:
    """A metadata line as (keyword, name, text); ("", "", "") for an ordinary comment."""
    if openmetrics:
        keyword, _, rest = line[2:].partition(" ") if line.startswith("# ") else ("", "", "")
        if keyword not in ("HELP", "TYPE", "UNIT"):
            raise ExpositionError(number, f"unexpected line {line[:60]!r} (OpenMetrics)")
        name, space, text = rest.partition(" ")
        if not space and keyword != "HELP":
            raise ExpositionError(number, f"expected '# {keyword} <name> <value>'")
    else:
        parts = line[1:].lstrip(" \t").split(None, 2)
        if len(parts) < 2 or parts[0] not in ("HELP", "TYPE"):
            return "", "", ""
        keyword, name = parts[0], parts[1]
        text = parts[2] if len(parts) > 2 else ""
        if keyword == "TYPE":
            text = text.strip()
    if not _NAME.fullmatch(name):
        raise ExpositionError(number, f"invalid metric name {name!r} in the {keyword} line")
    if keyword == "HELP":
        text = _unescape_help(text, openmetrics)
    return keyword, name, text


def _apply(family: FamilyMeta, keyword: str, text: str, number: int, openmetrics: bool) -> None:
    name = family.name
    if keyword == "TYPE":
        if family.typed:
            raise ExpositionError(number, f"second TYPE line for {name}")
        if text not in (OPENMETRICS_TYPES if openmetrics else TEXT_TYPES):
            raise ExpositionError(number, f"unknown type {text!r} for {name}")
        family.typed = True
        family.type = text
        family.line = number
    elif keyword == "HELP":
        if family.helped:
            raise ExpositionError(number, f"second HELP line for {name}")
        family.helped = True
        family.help = text
    else:
        if family.unit:
            raise ExpositionError(number, f"second UNIT line for {name}")
        if text and not name.endswith("_" + text):
            raise ExpositionError(number, f"the name {name} does not end with its unit _{text}")
        family.unit = text


def _unescape_help(text: str, openmetrics: bool) -> str:
    if "\\" not in text:
        return text
    escapes = {"\\": "\\", "n": "\n", '"': '"'} if openmetrics else {"\\": "\\", "n": "\n"}
    out: list[str] = []
    position = 0
    while position < len(text):
        char = text[position]
        following = text[position + 1 : position + 2]
        if char == "\\" and following in escapes:
            out.append(escapes[following])
            position += 2
            continue
        out.append(char)
        position += 1
    return "".join(out)


def _structure(page: Page) -> list[int]:
    """Check that samples fit their families and follow their TYPE; the indexes of repeated
    samples (a series' later samples)."""
    entries = page.entries
    resolved: dict[SeriesLine, int] = {}
    duplicates = []
    for index, entry in enumerate(entries):
        if entry in resolved:
            duplicates.append(index)
            continue
        resolved[entry] = index
        family, role = page.resolve(entry)
        number = page.lines[index]
        if family.typed and number < family.line:
            raise ExpositionError(family.line, f"TYPE line for {family.name} after its samples")
        if not page.openmetrics:
            continue
        if not role and family.typed and family.type in _NEEDS_SUFFIX:
            raise ExpositionError(
                number, f"sample {entry.name} does not fit {family.type} {family.name}"
            )
    return duplicates


def _remove(page: Page, indexes: list[int]) -> None:
    doomed = set(indexes)
    keep = [i for i in range(len(page.entries)) if i not in doomed]
    page.entries = [page.entries[i] for i in keep]
    page.values = [page.values[i] for i in keep]
    page.lines = [page.lines[i] for i in keep]
    moved = {old: new for new, old in enumerate(keep)}
    if page.timestamps:
        page.timestamps = {moved[i]: t for i, t in page.timestamps.items() if i in moved}
    if page.exemplars:
        page.exemplars = {moved[i]: e for i, e in page.exemplars.items() if i in moved}


__all__ = ["ExpositionError", "TextParser", "parse_float", "resolve"]
