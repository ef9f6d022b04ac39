"""Remote-write 1.0 and 2.0 requests -> `Batch` of `native_prometheus` metrics.

Every sample becomes a number point of a metric named by its `__name__`; the other labels are the
series attributes as they are (empty values dropped). Timestamps go from ms to ns; a sample with
Prometheus' StaleNaN bit pattern gets `FLAG_NO_RECORDED_VALUE`, so exporters end the series.

Types: remote-write 1.0 carries no type with a sample. Metadata (`WriteRequest.metadata`, which
Prometheus sends in requests of its own, by default every minute; in 2.0 each series' `metadata`)
is remembered per family name: a `counter` family becomes a cumulative monotonic SUM under its
exact name (`foo_total` stays `foo_total`; a family `foo` also types the series `foo_total`);
everything else, and anything without metadata, is a GAUGE. Classic histograms and summaries pass
through as their component series (`_bucket`, `_sum`, `_count`, quantiles), as gauges. The
`<base>_created` series of a counter family (an OpenMetrics scrape's creation time) is dropped
once the counter is known: in OpenMetrics it is a sample name of the counter family itself, so
the exporter could not show both (the creation time is not used yet). When
metadata changes the type of a family already seen, its known series are ended (a staleness point
each, before the new points in the same batch), so the exporter never holds both types at once.
Native histograms are not supported yet: they are counted as rejected and dropped. Exemplars are
ignored.

Validation (per series, once, when the series is first seen; `labels.py`): label names unique,
`__name__` present and a valid metric name, other names valid label names; labels not sorted by
name are sorted (with `strict`, refused). An invalid series is skipped and reported; the valid
series of the same request are still delivered (what Prometheus' own receiver does).

Steady state costs one dict lookup per series: the cache key is the raw encoded label fields (1.0:
a known series' entry with one sample is read in place, without a protobuf parse, see `layout.py`)
or the label strings (2.0); labels are parsed and validated only for a series not seen before.

Caches (each a `BoundedTable`: past its bound it forgets everything and refills, and the memory
limiter empties them before it refuses data): series by key, 1.0 and 2.0 (`max_series` each,
about 1 KiB an entry with its key and labels; every series seen gets one, admitted downstream or
not); decoded labels (200k); label-name shapes (200k, `labels.py`); timestamps (4096). What
metadata taught (family types and help) is state, not cache: it is kept. The series caches hand
out one object per series, so series do not go through the process-wide interner as well (that
would cost each first sight ~0.3 us and the interner an entry per series).

Float values are passed on bit for bit: `-0` stays `-0`, a NaN keeps its payload, so the StaleNaN
pattern is recognised and every exporter can write it back exactly.

Invariant: a cached series is always of the current metric for its name (a retype evicts first),
and a cache hit gives exactly what a full decode of its labels would give.
"""

from __future__ import annotations

import math
import time
from typing import Any, Final

from google.protobuf.message import DecodeError as ProtobufDecodeError

from metricgate.model import (
    FLAG_NO_RECORDED_VALUE,
    INTERNER,
    Batch,
    Metric,
    MetricKind,
    MetricPoints,
    Series,
    Temporality,
)
from metricgate.model.caches import BoundedTable
from metricgate.receivers.prometheus_remote_write.labels import LabelSets
from metricgate.receivers.prometheus_remote_write.result import (
    DecodeError,
    DecodeResult,
    InvalidSeriesError,
    RequestPoints,
    add_invalid,
)
from metricgate.wire.protowire import field
from metricgate.wire.remotewrite.layout import (
    STAMP_LEN,
    VALUE_AT,
    VALUE_HEAD,
    VALUE_TAIL,
    ZERO_HEAD,
    ZERO_TAIL,
    label_fields,
    stamp_ns,
    unpack_double_from,
)
from metricgate.wire.remotewrite.schema import (
    METRIC_TYPE_COUNTER,
    Label,
    RequestV2,
    TimeSeriesRaw,
    WriteRequestFlat,
)

SCOPE_NAME: Final = "metricgate/prometheus_remote_write"
DEFAULT_MAX_SERIES: Final = 1_000_000
"""Series one decoder caches per protocol version (1.0 and 2.0 each)."""
_MAX_FAMILIES: Final = 200_000
_MAX_STAMPS: Final = 4096
_MAX_PAIRS: Final = 200_000


def parse_v1(body: bytes) -> Any:
    """A 1.0 body's entries (each `TimeSeries` as bytes) and metadata; `DecodeError` if it is
    not a `prometheus.WriteRequest`."""
    try:
        return WriteRequestFlat.FromString(body)
    except ProtobufDecodeError as exc:
        raise DecodeError(f"body is not a remote-write 1.0 WriteRequest: {exc}") from None


class RemoteWriteDecoder:
    """Decodes requests of one receiver, keeping its series caches and the metadata it learned."""

    def __init__(self, max_series: int = DEFAULT_MAX_SERIES, *, strict: bool = False) -> None:
        self.max_series = max_series
        self._resource = INTERNER.intern_resource(())
        self._scope = INTERNER.intern_scope(SCOPE_NAME)
        self._v1: BoundedTable[bytes, Series] = BoundedTable(max_series)
        """1.0: a series' encoded label fields -> the series (see layout.py)."""
        self._pairs: BoundedTable[bytes, tuple[str, str]] = BoundedTable(_MAX_PAIRS)
        """1.0: an encoded `Label` -> its (name, value)."""
        self._labels = LabelSets(strict)
        self._stamps: BoundedTable[bytes, int] = BoundedTable(_MAX_STAMPS)
        """1.0: encoded timestamp fields (see layout.py) -> ns; a request usually has one."""
        self._v2: BoundedTable[tuple[str, ...], Series] = BoundedTable(max_series)
        self._counter: dict[str, bool] = {}
        """Family (sample) name -> is a counter, from metadata."""
        self._help: dict[str, str] = {}
        self._metrics: dict[str, Metric] = {}
        self._created: set[str] = set()
        """`<base>_created` names of known counter families: their samples are dropped."""
        skipped = INTERNER.intern_metric(
            self._resource, self._scope, "", "", MetricKind.GAUGE, native_prometheus=True
        )
        self._skip = Series(skipped, ())
        """Cached for a series whose samples are dropped on purpose (not an error)."""

    def decode_v1(self, body: bytes) -> DecodeResult:
        """A `prometheus.WriteRequest` (already decompressed)."""
        return self.decode_parsed_v1(parse_v1(body))

    def decode_parsed_v1(self, request: Any) -> DecodeResult:
        """A request `parse_v1` read (or anything with its `timeseries` entries as bytes and
        its `metadata` messages)."""
        result = DecodeResult(Batch())
        stale: dict[Metric, MetricPoints] = {}
        retyped: set[str] = set()
        for metadata in request.metadata:
            family = metadata.metric_family_name
            counter = metadata.type == METRIC_TYPE_COUNTER
            names = [family]
            if counter and not family.endswith("_total"):
                names.append(f"{family}_total")
            for name in names:
                retyped.update(self._learn(name, counter, metadata.help))
        if retyped:
            self._retire(retyped, stale)
        if request.metadata:
            result.metadata = b"".join(field(3, m.SerializeToString()) for m in request.metadata)
        points = RequestPoints()
        self._entries_v1(request.timeseries, points, result)
        result.batch.metrics = [*stale.values(), *points.finish()]
        result.samples += points.count
        return result

    def _entries_v1(self, entries: Any, points: RequestPoints, result: DecodeResult) -> None:
        """Add every entry's samples to `points`, in order. A known series with one sample is
        read in place (see layout.py), anything else parsed in full. The receiver's hot loop:
        everything it touches is local."""
        cache, stamps = self._v1.entries, self._stamps.entries
        skip, appenders = self._skip, points.appenders
        value_tail, value_at, zero_tail, stamp_len = -VALUE_TAIL, -VALUE_AT, -ZERO_TAIL, -STAMP_LEN
        value_head, zero_head, unpack = VALUE_HEAD, ZERO_HEAD, unpack_double_from
        last_tail, stamp, last_metric = b"", None, None
        add_series = add_value = add_stamp = None
        for entry in entries:
            tail = entry[stamp_len:]
            if tail != last_tail:
                last_tail = tail
                stamp = stamps.get(tail) or self._stamp(tail)
            if stamp is not None:
                if entry[value_tail:value_at] == value_head:
                    key = entry[:value_tail]
                    value = unpack(entry, len(entry) + value_at)[0]
                elif entry[zero_tail:stamp_len] == zero_head:
                    key = entry[:zero_tail]
                    value = 0.0
                else:
                    key = None
                if key is not None and value == value:  # NaN: maybe StaleNaN, full parse
                    series = cache.get(key) or self._new_series_v1(key, result)
                    if series is not None:
                        if series is not skip:
                            metric = series.metric
                            if metric is not last_metric:
                                last_metric = metric
                                add_series, add_value, add_stamp = appenders.get(
                                    id(metric)
                                ) or points.open(metric)
                            add_series(series)  # type: ignore[misc]
                            add_value(value)  # type: ignore[misc]
                            add_stamp(stamp)  # type: ignore[misc]
                        continue
            self._entry_v1(entry, points, result)

    def _new_series_v1(self, key: bytes, result: DecodeResult) -> Series | None:
        """The series of labels `key` seen for the first time in an entry of the fast shape
        (`skip` when invalid: reported); None when `key` is not just labels (full parse)."""
        end, payloads = label_fields(key)
        if end != len(key):
            return None
        try:
            series = self._series(self._label_pairs(payloads))
        except InvalidSeriesError as exc:
            add_invalid(result, str(exc), 1)
            return self._skip
        self._remember_v1(key, series)
        return series

    def _remember_v1(self, key: bytes, series: Series) -> None:
        self._v1.put(key, series)

    def _stamp(self, tail: bytes) -> int | None:
        stamp = stamp_ns(tail)
        if stamp is not None:
            self._stamps.put(tail, stamp)
        return stamp

    def _entry_v1(self, entry: bytes, points: RequestPoints, result: DecodeResult) -> None:
        """One `TimeSeries` entry in full: a new series, several samples, anything unusual."""
        try:
            message: Any = TimeSeriesRaw.FromString(entry)
        except ProtobufDecodeError as exc:
            add_invalid(result, f"a timeseries entry does not decode ({exc})", 0)
            return
        _count_unsupported(result, message)
        samples = message.samples
        if not samples:
            return
        labels = message.labels
        end, payloads = label_fields(entry)
        # The labels are the cache key when they all come first (as every known writer does).
        key = entry[:end] if len(payloads) == len(labels) else None
        series = None if key is None else self._v1.entries.get(key)
        if series is None:
            try:
                series = self._series(self._label_pairs(labels))
            except InvalidSeriesError as exc:
                add_invalid(result, str(exc), len(samples))
                return
            if key is not None:
                self._remember_v1(key, series)
        if series is not self._skip:
            for sample in samples:
                points.add(series, sample.value, sample.timestamp * 1_000_000)

    def decode_v2(self, body: bytes) -> DecodeResult:
        """An `io.prometheus.write.v2.Request` (already decompressed)."""
        try:
            request: Any = RequestV2.FromString(body)
        except ProtobufDecodeError as exc:
            raise DecodeError(f"body is not a remote-write 2.0 Request: {exc}") from None
        symbols: list[str] = list(request.symbols)
        result = DecodeResult(Batch())
        points = RequestPoints()
        stale: dict[Metric, MetricPoints] = {}
        cache = self._v2.entries
        for series_message in request.timeseries:
            _count_unsupported(result, series_message)
            samples = series_message.samples
            if not samples:
                continue
            try:
                key = tuple([symbols[ref] for ref in series_message.labels_refs])
            except IndexError:
                add_invalid(result, "a label reference is past the end of symbols", len(samples))
                continue
            series = cache.get(key)
            metric_type = series_message.metadata.type
            if metric_type and series is not None and series is not self._skip:
                counter = metric_type == METRIC_TYPE_COUNTER
                if series.metric.is_counter != counter:
                    series = None  # typed differently now: relearn below
            if series is None:
                try:
                    pairs = _labels_v2(key)
                    if metric_type:
                        name = next(v for n, v in pairs if n == "__name__")
                        help_ref = series_message.metadata.help_ref
                        help_text = symbols[help_ref] if help_ref < len(symbols) else ""
                        retire = self._learn(name, metric_type == METRIC_TYPE_COUNTER, help_text)
                        if retire:
                            self._retire(retire, stale)
                    series = self._series(pairs)
                except (InvalidSeriesError, StopIteration) as exc:
                    add_invalid(result, str(exc) or f"no __name__ in {key!r}", len(samples))
                    continue
                self._v2.put(key, series)
            if series is self._skip:
                continue
            created = series_message.created_timestamp * 1_000_000
            for sample in samples:
                points.add(series, sample.value, sample.timestamp * 1_000_000, created)
        result.batch.metrics = [*stale.values(), *points.finish()]
        result.samples += points.count
        return result

    def _learn(self, name: str, counter: bool, help_text: str) -> set[str]:
        """Remember metadata of family `name`; return the names whose cached series must end."""
        if len(self._counter) >= _MAX_FAMILIES and name not in self._counter:
            self._counter.clear()
            self._help.clear()
            self._created.clear()
        if help_text:
            self._help[name] = help_text
        self._counter[name] = counter
        retire = set()
        known = self._metrics.get(name)
        if known is not None and known.is_counter != counter:
            retire.add(name)
        created = f"{name.removesuffix('_total')}_created"
        if counter and created not in self._created:
            self._created.add(created)
            retire.add(created)
        return retire

    def _retire(self, names: set[str], stale: dict[Metric, MetricPoints]) -> None:
        """End every cached series of `names` (now typed differently) with a staleness point."""
        # Only a name with a built metric can have cached series (the caches are cleared with
        # `_metrics`), so new names cost no scan of the caches.
        names = {name for name in names if self._metrics.pop(name, None) is not None}
        if not names:
            return
        now = time.time_ns()
        caches: tuple[dict[Any, Series], ...] = (self._v1.entries, self._v2.entries)
        for cache in caches:
            gone = [key for key, series in cache.items() if series.metric.name in names]
            for key in gone:
                series = cache.pop(key)
                group = stale.get(series.metric)
                if group is None:
                    group = stale[series.metric] = MetricPoints(series.metric)
                group.append(series, math.nan, now, 0, FLAG_NO_RECORDED_VALUE)

    def _label_pairs(self, labels: Any) -> list[tuple[str, str]]:
        """Encoded `Label`s -> (name, value) pairs, each distinct label decoded once."""
        pairs, cache = [], self._pairs.entries
        for raw in labels:
            pair = cache.get(raw)
            if pair is None:
                try:
                    label: Any = Label.FromString(raw)
                except ProtobufDecodeError as exc:
                    raise InvalidSeriesError(f"a label does not decode ({exc})") from None
                pair = self._pairs.put(raw, (label.name, label.value))
            pairs.append(pair)
        return pairs

    def _series(self, pairs: list[tuple[str, str]]) -> Series:
        """Validate a label set and intern its series (slow path: new series only)."""
        name, attributes, names = self._labels.split(pairs)
        if name in self._created:
            return self._skip
        return Series(self._metric(name), attributes, names)  # our caches hold it: no interning

    def _metric(self, name: str) -> Metric:
        metric = self._metrics.get(name)
        if metric is None:
            if len(self._metrics) >= _MAX_FAMILIES:
                # Cached series must stay of the current metric of their name (the invariant).
                self._metrics.clear()
                self._v1.release()
                self._v2.release()
            counter = self._counter.get(name, False)
            metric = self._metrics[name] = INTERNER.intern_metric(
                self._resource,
                self._scope,
                name,
                "",
                MetricKind.SUM if counter else MetricKind.GAUGE,
                Temporality.CUMULATIVE if counter else Temporality.UNSPECIFIED,
                counter,
                self._help.get(name, ""),
                native_prometheus=True,
            )
        return metric


def _count_unsupported(result: DecodeResult, series: Any) -> None:
    """Count a series' native histograms (refused) and exemplars (ignored), 1.0 or 2.0."""
    if series.histograms:
        result.histograms += len(series.histograms)
    if series.exemplars:
        result.exemplars += len(series.exemplars)


def _labels_v2(key: tuple[str, ...]) -> list[tuple[str, str]]:
    if len(key) % 2:
        raise InvalidSeriesError(f"odd number of label references in {key!r}")
    return list(zip(key[::2], key[1::2], strict=True))
