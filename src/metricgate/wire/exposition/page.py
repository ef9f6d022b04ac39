"""What a parsed exposition page is: its series lines, their values, and its metric families.

A `Page` keeps samples as parallel lists (`entries`, `values`, `lines`) so that parsing a page of
known series appends to lists and allocates nothing per sample. `entries[i]` is a `SeriesLine`:
one object per distinct series (sample name + label set) of one parser, reused across pages, so
callers can key their own per-series work on it and two samples of one series in a page are the
same object.

Which family a sample belongs to, and its role in it (`_bucket`, `_sum`, ...), follows from the
page's metadata (`# TYPE` lines): `Page.resolve(entry)` answers it.

Invariant: `len(entries) == len(values) == len(lines)`; `timestamps` and `exemplars` only hold
indexes below that length; a `SeriesLine` is never mutated after the parser hands it out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

Labels = tuple[tuple[str, str], ...]
"""Label pairs sorted by name, names unique (values may be empty)."""

TEXT_TYPES: Final = frozenset(("counter", "gauge", "histogram", "summary", "untyped"))
OPENMETRICS_TYPES: Final = frozenset(
    ("counter", "gauge", "histogram", "gaugehistogram", "summary", "stateset", "info", "unknown")
)
ROLES: Final = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("_sum", "_count", "_created"),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
    "info": ("_info",),
}
"""Sample name suffixes of each type, OpenMetrics' list (the text format uses a subset)."""
_TEXT_ROLES: Final = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("_sum", "_count", "_created"),
}
_BARE: Final = frozenset(("gauge", "summary", "stateset", "unknown", "untyped"))
"""OpenMetrics types whose family name is itself a sample name."""


class ExpositionError(Exception):
    """The page is not valid in its format; `line` is 1-based (0 when no line applies). In the
    protobuf format the `line` is the number of the `MetricFamily` message (`unit="message"`)."""

    def __init__(self, line: int, message: str, unit: str = "line") -> None:
        super().__init__(f"{unit} {line}: {message}" if line else message)
        self.line = line
        self.message = message


class SeriesLine:
    """One series of a page: sample name and labels (see the module docstring)."""

    __slots__ = ("_hash", "labels", "name")

    def __init__(self, name: str, labels: Labels) -> None:
        self.name: Final = name
        self.labels: Final = labels
        self._hash: Final = hash((name, labels))

    def __hash__(self) -> int:
        return self._hash

    def text(self) -> str:
        """The series as a text-format line head: `name{a="b"}`."""
        if not self.labels:
            return self.name
        return self.name + "{" + ",".join(f'{n}="{escape(v)}"' for n, v in self.labels) + "}"

    def __repr__(self) -> str:
        return f"SeriesLine({self.text()})"


@dataclass(frozen=True, slots=True)
class Exemplar:
    """An OpenMetrics exemplar: its labels (`trace_id`, ...), value and optional timestamp."""

    labels: Labels
    value: float
    timestamp_ms: int | None = None


@dataclass(slots=True)
class FamilyMeta:
    """A family's metadata: its `# TYPE` (`untyped`/`unknown` when absent), HELP and UNIT."""

    name: str
    type: str
    help: str = ""
    unit: str = ""
    typed: bool = False
    helped: bool = False
    line: int = 0
    """Where the family's first metadata line is."""


@dataclass(slots=True)
class Page:
    """One parsed page (see the module docstring)."""

    openmetrics: bool
    entries: list[SeriesLine] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    timestamps: dict[int, int] | None = None
    """Sample index -> its own timestamp in milliseconds; None when no sample has one."""
    exemplars: dict[int, Exemplar] | None = None
    families: dict[str, FamilyMeta] = field(default_factory=dict)
    duplicates: list[int] = field(default_factory=list)
    """Lines of samples left out because their series came earlier in the page."""
    shape: object = None
    """Identical (the same object) for consecutive pages of one parser whose series, order and
    metadata are all the same, so callers can reuse per-page work (see `PageConverter`)."""
    schema: tuple[str, ...] = ()
    """The page's metadata lines in order: equal schemas resolve every entry alike, so callers
    may keep per-entry work across pages while this stays the same."""

    def resolve(self, entry: SeriesLine) -> tuple[FamilyMeta, str]:
        """The family `entry` belongs to and its role there (`""` for the bare sample name,
        else the suffix: `_total`, `_bucket`, `_sum`, `_count`, `_created`, ...)."""
        return resolve(entry.name, self.families, self.openmetrics)

    def __len__(self) -> int:
        return len(self.entries)


def resolve(
    name: str, families: dict[str, FamilyMeta], openmetrics: bool
) -> tuple[FamilyMeta, str]:
    """See `Page.resolve`; a sample of no declared family is a family of its own."""
    found = families.get(name)
    if found is not None and (not openmetrics or found.type in _BARE or not found.typed):
        return found, ""
    roles = ROLES if openmetrics else _TEXT_ROLES
    cut = name.rfind("_")
    while cut > 0:
        base = families.get(name[:cut])
        if base is not None and name[cut:] in roles.get(base.type, ()):
            return base, name[cut:]
        cut = name.rfind("_", 0, cut)
    if found is not None:
        return found, ""
    return FamilyMeta(name, "unknown" if openmetrics else "untyped"), ""


def escape(value: str) -> str:
    r"""A label value for a text page: `\` -> `\\`, `"` -> `\"`, newline -> `\n`."""
    if "\\" in value:
        value = value.replace("\\", "\\\\")
    if '"' in value:
        value = value.replace('"', '\\"')
    if "\n" in value:
        value = value.replace("\n", "\\n")
    return value
