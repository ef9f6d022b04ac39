"""The delimited protobuf format: varint-length-prefixed `io.prometheus.client.MetricFamily`s.

`parse_protobuf(body)` turns the messages into the same `Page` the text parser returns, with the
samples a text page of the same metrics would hold: a counter's value under the family name, a
histogram's `_bucket{le}` (cumulative, `+Inf` added from the count when absent), `_sum` and
`_count`, a summary's `{quantile}`, `_sum` and `_count`, and a created timestamp as a
`<name>_created` sample (seconds), as prometheus_client writes it in text. Family types map to
their text names (`GAUGE_HISTOGRAM` to `gaugehistogram`, with `_gcount` and `_gsum`).

Errors raise `ExpositionError` naming the message (1-based, in `line`): a truncated length
prefix or message, an undecodable message, an unknown type, a native histogram (no classic
buckets: not supported yet), invalid names.

Invariant: the page is what `TextParser` makes of the text rendering of the same families, so
receivers treat every format alike.
"""

from __future__ import annotations

import math
import re
from typing import Any, Final

from google.protobuf.message import DecodeError

from metricgate.wire.exposition import schema
from metricgate.wire.exposition.page import (
    Exemplar,
    ExpositionError,
    FamilyMeta,
    Labels,
    Page,
    SeriesLine,
)
from metricgate.wire.protowire import WireError, read_varint


def _error(number: int, message: str) -> ExpositionError:
    """An error naming the message (protobuf pages have no lines)."""
    return ExpositionError(number, message, unit="message")


_NAME: Final = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
_LABEL: Final = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
_TYPES: Final = {
    schema.COUNTER: "counter",
    schema.GAUGE: "gauge",
    schema.SUMMARY: "summary",
    schema.UNTYPED: "untyped",
    schema.HISTOGRAM: "histogram",
    schema.GAUGE_HISTOGRAM: "gaugehistogram",
}


def parse_protobuf(body: bytes) -> Page:
    """The page of a delimited `MetricFamily` stream (see the module docstring)."""
    page = Page(openmetrics=False)
    series: dict[tuple[str, Labels], SeriesLine] = {}
    position, number = 0, 0
    while position < len(body):
        number += 1
        try:
            length, position = read_varint(body, position)
        except WireError:
            raise _error(number, "truncated length prefix") from None
        end = position + length
        if end > len(body):
            raise _error(number, "message is cut short (length prefix past the end)")
        try:
            family: Any = schema.MetricFamily.FromString(body[position:end])
        except DecodeError as exc:
            raise _error(number, f"message does not decode: {exc}") from None
        position = end
        _family(page, family, number, series)
    return page


def _family(
    page: Page, family: Any, number: int, series: dict[tuple[str, Labels], SeriesLine]
) -> None:
    name = family.name
    if not _NAME.match(name):
        raise _error(number, f"invalid metric name {name!r}")
    kind = _TYPES.get(family.type)
    if kind is None:
        raise _error(number, f"unknown metric type {family.type} for {name}")
    if name in page.families:
        raise _error(number, f"second family named {name}")
    page.families[name] = FamilyMeta(
        name, kind, family.help, family.unit, typed=True, helped=bool(family.help), line=number
    )

    def add(sample: str, labels: Labels, value: float, stamp: int | None) -> int:
        key = (sample, labels)
        entry = series.get(key)
        if entry is None:
            entry = series[key] = SeriesLine(sample, labels)
        index = len(page.entries)
        page.entries.append(entry)
        page.values.append(value)
        page.lines.append(number)
        if stamp is not None:
            if page.timestamps is None:
                page.timestamps = {}
            page.timestamps[index] = stamp
        return index

    for metric in family.metric:
        labels = _labels(metric.label, number, name)
        stamp = metric.timestamp_ms if metric.HasField("timestamp_ms") else None
        if kind == "counter":
            index = add(name, labels, metric.counter.value, stamp)
            _exemplar(page, index, metric.counter, number)
            _created(add, name.removesuffix("_total"), labels, metric.counter, stamp)
        elif kind == "gauge":
            add(name, labels, metric.gauge.value, stamp)
        elif kind == "untyped":
            add(name, labels, metric.untyped.value, stamp)
        elif kind == "summary":
            summary = metric.summary
            for quantile in summary.quantile:
                pairs = _with(labels, "quantile", _format(quantile.quantile), number, name)
                add(name, pairs, quantile.value, stamp)
            add(f"{name}_sum", labels, summary.sample_sum, stamp)
            add(f"{name}_count", labels, float(summary.sample_count), stamp)
            _created(add, name, labels, summary, stamp)
        else:
            _histogram(add, page, name, labels, metric.histogram, stamp, number, kind)


def _histogram(
    add: Any,
    page: Page,
    name: str,
    labels: Labels,
    histogram: Any,
    stamp: int | None,
    number: int,
    kind: str,
) -> None:
    if histogram.HasField("schema") and not histogram.bucket:
        raise _error(number, f"{name} is a native histogram, which is not supported yet")
    count = histogram.sample_count_float or float(histogram.sample_count)
    infinite = False
    for bucket in histogram.bucket:
        bound = bucket.upper_bound
        infinite = infinite or bound == math.inf
        value = bucket.cumulative_count_float or float(bucket.cumulative_count)
        index = add(
            f"{name}_bucket", _with(labels, "le", _format(bound), number, name), value, stamp
        )
        _exemplar(page, index, bucket, number)
    if not infinite:
        add(f"{name}_bucket", _with(labels, "le", "+Inf", number, name), count, stamp)
    gauge = kind == "gaugehistogram"
    add(f"{name}_gsum" if gauge else f"{name}_sum", labels, histogram.sample_sum, stamp)
    add(f"{name}_gcount" if gauge else f"{name}_count", labels, count, stamp)
    if not gauge:
        _created(add, name, labels, histogram, stamp)


def _created(add: Any, base: str, labels: Labels, message: Any, stamp: int | None) -> None:
    if message.HasField("created_timestamp"):
        created = message.created_timestamp
        add(f"{base}_created", labels, created.seconds + created.nanos / 1e9, stamp)


def _exemplar(page: Page, index: int, message: Any, number: int) -> None:
    if not message.HasField("exemplar"):
        return
    exemplar = message.exemplar
    stamp = None
    if exemplar.HasField("timestamp"):
        stamp = exemplar.timestamp.seconds * 1000 + exemplar.timestamp.nanos // 1_000_000
    if page.exemplars is None:
        page.exemplars = {}
    page.exemplars[index] = Exemplar(_labels(exemplar.label, number, ""), exemplar.value, stamp)


def _labels(pairs: Any, number: int, name: str) -> Labels:
    labels: dict[str, str] = {}
    for pair in pairs:
        label = pair.name
        if not _LABEL.match(label):
            raise _error(number, f"invalid label name {label!r} in {name}")
        if label in labels:
            raise _error(number, f"label {label} given twice in {name}")
        labels[label] = pair.value
    return tuple(sorted(labels.items()))


def _with(labels: Labels, label: str, value: str, number: int, name: str) -> Labels:
    if any(pair[0] == label for pair in labels):
        raise _error(number, f"{name} has a label named {label}, which it may not use")
    return tuple(sorted((*labels, (label, value))))


def _format(value: float) -> str:
    """A bound or quantile as Go's shortest formatting writes it (`0.5`, `1`, `+Inf`)."""
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    if value == int(value) and abs(value) < 1e21:
        return str(int(value))
    return repr(value)
