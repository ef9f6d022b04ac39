"""Render a `Store` as Prometheus text format 0.0.4 or OpenMetrics 1.0.0, in chunks.

`render(store, openmetrics=..., timestamps=...)` yields the page as strings of at most about
`CHUNK_LINES` lines, so the server can encode, compress and send one chunk while the event loop
stays responsive between them. Every series' prefix (`name{labels} `; for histograms and
summaries the starts of its bucket or quantile, `_sum` and `_count` lines, plus `le="..."} `
ends shared by all series with the same bounds) is built once and cached; a scrape formats values
and joins. Families come sorted by name, series in the order they first appeared.

`tenant` shows only the series of one tenant (`Store.tenant_of`), for a tenant scraping with its
own credentials; families without one of its series are left out.

OpenMetrics differs from the text format only in: TYPE, UNIT, HELP order; counter families named
without `_total`; timestamps in seconds; exemplars (counters and histogram buckets only); and the
final `# EOF`. `target_info` is a gauge in both formats (the specification's choice for clients
without info metrics), so a user metric named `target` never clashes with it. `le` and `quantile`
values are spelled the same in both, as Go's client library writes them in the text format
(`le="1"`, not OpenMetrics' canonical `1.0`: see `metricgate.translate.bounds` for why), and a
bound or quantile repeated within one point is written once (the last one counts).

Invariant: a rendered page holds each family once, TYPE before its samples, each label set once
(the store guarantees it per series, `bound_labels` per bucket and quantile), histogram buckets in
the order of their bounds ending with `+Inf` = `_count`.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from itertools import accumulate, islice, repeat
from operator import attrgetter

from metricgate.exporters.prometheus.entries import Entry, Family, PointEntry, Tails
from metricgate.exporters.prometheus.points import scaled_histogram
from metricgate.exporters.prometheus.store import Store
from metricgate.model import Exemplar, ExponentialHistogramPoint, HistogramPoint, SummaryPoint
from metricgate.translate import (
    FamilyType,
    InvalidLabelNameError,
    attribute_text,
    escape_help,
    escape_label_value,
    format_value,
    prometheus_label_name,
)
from metricgate.translate.bounds import bound_labels
from metricgate.translate.exponential import to_explicit

CHUNK_LINES = 20_000
TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"
EXEMPLAR_RUNES = 128
"""OpenMetrics: an exemplar's label names and values together hold at most 128 characters."""

_values = attrgetter("value")
_exemplars = attrgetter("exemplars")
_format = format_value


def render(
    store: Store,
    *,
    openmetrics: bool = False,
    timestamps: bool = False,
    tenant: str | None = None,
) -> Iterator[str]:
    """The page, as a sequence of chunks (see module docstring); every series, or `tenant`'s."""
    tenant_of = store.tenant_of
    for family in sorted(list(store.families.values()), key=attrgetter("name")):
        entries = list(family.entries.values())
        if tenant is not None:
            entries = [entry for entry in entries if tenant_of(entry) == tenant]
        if not entries:
            continue
        yield _header(family, openmetrics)
        if family.type in (FamilyType.COUNTER, FamilyType.GAUGE):
            yield from _numbers(family, entries, openmetrics, timestamps)
        else:
            yield from _points(family, entries, openmetrics, timestamps)
    if openmetrics:
        yield "# EOF\n"


def _header(family: Family, openmetrics: bool) -> str:
    help_text = escape_help(family.help)
    if not openmetrics:
        return f"# HELP {family.name} {help_text}\n# TYPE {family.name} {family.type.value}\n"
    name, type_name = family.name, family.type.value
    if family.type is FamilyType.COUNTER:
        if name.endswith("_total"):
            name = name[: -len("_total")]
        else:
            type_name = "unknown"  # OpenMetrics counters need `_total`; names without it stay
    unit = f"# UNIT {name} {family.unit}\n" if family.unit else ""
    return f"# TYPE {name} {type_name}\n{unit}# HELP {name} {help_text}\n"


def _numbers(
    family: Family, entries: list[Entry], openmetrics: bool, timestamps: bool
) -> Iterator[str]:
    exemplars = openmetrics and family.type is FamilyType.COUNTER
    for start in range(0, len(entries), CHUNK_LINES):
        part = entries[start : start + CHUNK_LINES]
        if not timestamps and not (exemplars and any(map(_exemplars, part))):
            # The hot path: one f-string per series around its cached prefix.
            yield "".join([f"{e.prefix}{_format(e.value)}\n" for e in part])  # type: ignore[arg-type]
            continue
        lines = []
        for e in part:
            line = e.prefix + format_value(e.value)  # type: ignore[arg-type]
            if timestamps and e.timestamp:
                line += _timestamp(e.timestamp, openmetrics)
            if exemplars and e.exemplars:
                line += _exemplar(max(e.exemplars, key=_values))
            lines.append(line)
        lines.append("")
        yield "\n".join(lines)


def _points(
    family: Family, entries: list[Entry], openmetrics: bool, timestamps: bool
) -> Iterator[str]:
    name, step = family.name, max(1, CHUNK_LINES // 16)
    for start in range(0, len(entries), step):
        out: list[str] = []
        for entry in islice(entries, start, start + step):
            assert isinstance(entry, PointEntry)
            suffix = _timestamp(entry.timestamp, openmetrics) if timestamps else ""
            value = entry.value
            if isinstance(value, ExponentialHistogramPoint):
                converted = entry.converted
                if converted is None or converted[0] is not value:
                    explicit = scaled_histogram(to_explicit(value), entry.scale)
                    converted = entry.converted = (value, explicit)
                value = converted[1]
            if isinstance(value, HistogramPoint):
                _histogram(out, name, entry, value, suffix, openmetrics)
            elif isinstance(value, SummaryPoint):
                _summary(out, name, entry, value, suffix)
        yield "".join(out)


def _histogram(
    out: list[str],
    name: str,
    entry: PointEntry,
    point: HistogramPoint,
    suffix: str,
    openmetrics: bool,
) -> None:
    heads = entry.heads or _heads(entry, f"{name}_bucket", "le", name)
    bounds = point.bounds if point.bucket_counts else ()
    if entry.tails_key is not bounds:
        entry.tails, entry.tails_key = _tails(bounds, _LE_TAILS, '+Inf"} '), bounds
    tails, keep = entry.tails
    counts = [*accumulate(point.bucket_counts[: len(bounds)]), point.count]
    if keep is not None:  # repeated bounds: each `le` once, with the count through its last
        counts = [*(counts[i] for i in keep), point.count]
    ends = [f"{suffix}\n"] * len(counts)
    if openmetrics and entry.exemplars:
        for index, exemplar in _bucket_exemplars(bounds, entry.exemplars).items():
            if keep is not None:
                index = bisect_left(keep, index)
            ends[index] = f"{suffix}{_exemplar(exemplar)}\n"
    out.extend(map("{}{}{}{}".format, repeat(heads[0]), tails, counts, ends))
    # The specification reports `_sum` only while it can only grow: no negative bucket, no
    # negative sum. OpenMetrics has `_count` only with `_sum`; the +Inf bucket still counts.
    if point.sum is not None and point.sum >= 0 and not (bounds and bounds[0] < 0):
        out.append(f"{heads[1]}{format_value(point.sum)}{suffix}\n")
    elif openmetrics:
        return
    out.append(f"{heads[2]}{point.count}{suffix}\n")


def _summary(
    out: list[str], name: str, entry: PointEntry, point: SummaryPoint, suffix: str
) -> None:
    heads = entry.heads or _heads(entry, name, "quantile", name)
    quantiles = tuple(q for q, _ in point.quantiles)
    if entry.tails_key != quantiles:
        entry.tails, entry.tails_key = _tails(quantiles, _QUANTILE_TAILS, ""), quantiles
    tails, keep = entry.tails
    pairs = point.quantiles if keep is None else [point.quantiles[i] for i in keep]
    for tail, (_, value) in zip(tails, pairs, strict=True):
        out.append(f"{heads[0]}{tail}{format_value(value)}{suffix}\n")
    out.append(f"{heads[1]}{format_value(point.sum)}{suffix}\n")
    out.append(f"{heads[2]}{point.count}{suffix}\n")


def _heads(entry: PointEntry, sample: str, label: str, name: str) -> tuple[str, str, str]:
    labels = entry.prefix
    opening = f'{sample}{{{labels},{label}="' if labels else f'{sample}{{{label}="'
    entry.heads = (opening, _line(f"{name}_sum", labels), _line(f"{name}_count", labels))
    return entry.heads


_LE_TAILS: dict[tuple[float, ...], Tails] = {}
_QUANTILE_TAILS: dict[tuple[float, ...], Tails] = {}


def _tails(values: tuple[float, ...], cache: dict[tuple[float, ...], Tails], last: str) -> Tails:
    """`(('0.1"} ', ..., last), keep)`: one shared pair for every series with these bounds.

    The texts are `metricgate.translate.bounds`' (the spelling every output shares); `keep` is
    its list of positions to write (None: all), so that no label set appears twice.
    """
    found = cache.get(values)
    if found is None:
        if len(cache) >= 4096:
            cache.clear()
        labels = bound_labels(values)
        ends = (*(f'{text}"}} ' for text in labels.written), *((last,) if last else ()))
        found = cache[values] = (ends, labels.keep)
    return found


def _line(sample: str, labels: str) -> str:
    return f"{sample}{{{labels}}} " if labels else f"{sample} "


def _timestamp(nanos: int, openmetrics: bool) -> str:
    if not nanos:
        return ""
    if openmetrics:
        return f" {nanos // 1_000_000_000}.{nanos // 1_000_000 % 1000:03d}"
    return f" {nanos // 1_000_000}"


def _bucket_exemplars(
    bounds: tuple[float, ...], exemplars: tuple[Exemplar, ...]
) -> dict[int, Exemplar]:
    """The largest exemplar falling in each bucket, by bucket index."""
    chosen: dict[int, Exemplar] = {}
    for exemplar in exemplars:
        index = bisect_left(bounds, exemplar.value)
        held = chosen.get(index)
        if held is None or exemplar.value > held.value:
            chosen[index] = exemplar
    return chosen


def _exemplar(exemplar: Exemplar) -> str:
    """` # {trace_id="..",span_id=".."} value timestamp`, labels within the 128-rune budget."""
    pairs: list[str] = []
    seen: set[str] = set()
    budget = EXEMPLAR_RUNES
    candidates = [("trace_id", exemplar.trace_id), ("span_id", exemplar.span_id)]
    for key, value in exemplar.filtered_attributes:
        try:
            candidates.append((prometheus_label_name(key), attribute_text(value)))
        except InvalidLabelNameError:
            continue
    for name, text in candidates:
        cost = len(name) + len(text)
        if not text or name in seen or cost > budget:
            continue
        seen.add(name)
        budget -= cost
        pairs.append(f'{name}="{escape_label_value(text)}"')
    stamp = _timestamp(exemplar.time_unix_nano, True)
    return f" # {{{','.join(pairs)}}} {format_value(exemplar.value)}{stamp}"
