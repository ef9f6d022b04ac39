"""What the scrape page holds: families of entries, one entry per series.

An `Entry` (counters and gauges) keeps its series' rendered prefix `name{labels} ` and latest
value; a `PointEntry` (histograms and summaries) keeps the bare label text and its point, plus
line starts built at the first render. The classes use `__slots__`: a page of a million series
holds a million entries, and each byte per entry is a megabyte.

Invariant: `Entry.prefix` is the entry's key in `Family.entries`, and never changes.
"""

from __future__ import annotations

from metricgate.model import Exemplar, HistogramPoint, PointValue, Series
from metricgate.translate import FamilyType

Tails = tuple[tuple[str, ...], tuple[int, ...] | None]
"""A histogram's or summary's line ends (`0.5"} `) and which bound positions they are for
(None: every position; see `metricgate.translate.bounds`)."""


class Family:
    """One metric family on the page: its metadata and its entries keyed by label text."""

    __slots__ = ("entries", "help", "name", "type", "unit")

    def __init__(self, name: str, family_type: FamilyType, help_text: str, unit: str) -> None:
        self.name = name
        self.type = family_type
        self.help = help_text
        self.unit = unit
        self.entries: dict[str, Entry] = {}


class Entry:
    """One counter or gauge series on the page: `prefix` is `name{labels} `.

    `value` is already scaled and accumulated (a delta sum's running total); `updated` is the
    monotonic time of the last point; `timestamp` the point's own (ns), kept only when needed.
    """

    __slots__ = ("exemplars", "family", "prefix", "series", "timestamp", "updated", "value")

    def __init__(self, series: Series | None, family: Family, prefix: str, now: float) -> None:
        self.series = series
        self.family = family
        self.prefix = prefix
        self.value: PointValue = 0.0
        self.timestamp = 0
        self.updated = now
        self.exemplars: tuple[Exemplar, ...] = ()


class PointEntry(Entry):
    """A histogram or summary series: `prefix` is the bare label text (`a="x",b="y"`).

    `heads` (built at the first render) are its three line starts: `name_bucket{a="x",le="` (or
    `name{a="x",quantile="` for a summary), `name_sum{a="x"} ` and `name_count{a="x"} `. `tails`
    are the `0.5"} ` ends of its bucket or quantile lines and the bound positions they are for,
    shared by every series with the same bounds (`tails_key`). `converted` caches an exponential
    point's explicit buckets, multiplied by `scale` (exponential points are kept in their
    original unit: a scaled exponential bucket is no exponential bucket any more).
    """

    __slots__ = ("converted", "heads", "scale", "tails", "tails_key")

    def __init__(self, series: Series | None, family: Family, prefix: str, now: float) -> None:
        super().__init__(series, family, prefix, now)
        self.scale = 1.0
        self.heads: tuple[str, str, str] | None = None
        self.tails: Tails = ((), None)
        self.tails_key: object = None
        self.converted: tuple[object, HistogramPoint] | None = None
