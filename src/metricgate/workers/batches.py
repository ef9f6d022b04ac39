"""A batch as one worker sends it to another: series by number, values as packed arrays.

Both ends of one connection keep a table of the series sent over it: the sender numbers each
series the first time it sends it (`Outgoing`), the receiver keeps the series at that number
(`Incoming`). A group of number points (gauges and sums without exemplars, nearly all points) then
travels, with every other such group of the batch, as five packed columns: series numbers,
values, times, start times and flags (one `struct` call each way per batch, and a few slices per
group, instead of Python work per point). A new series is first
defined by a one-group OTLP body of the `BatchCodec` (so it arrives as the same interned series,
`native_prometheus` included); every other group (histograms, summaries, exemplars) travels as
such a body whole.

The body is a sequence of records, each `kind` (1 byte) and `length` (4 bytes) then its bytes:

- `RESET`: forget every number (the sender's table was full and starts again from 0);
- `DEFINE`: a one-group OTLP body whose points' series take the next numbers, in order;
- `NUMBERS`: every number group of the batch at once: the group count g, g point counts
  (uint32), then for all n points together the series numbers (uint32), values (float64), times,
  start times (int64) and flags (int32), native byte order (both ends are the same host);
- `OTLP`: a `BatchCodec` body, consumed as it is.

The sending end's table is bounded (`MAX_SERIES`, then both ends start again) and registered with
the memory limiter (`model.caches`): emptied, it tells the other end with a `RESET` record.

Invariant: the records of one connection are read in the order they were written (the receiving
worker decodes each frame before it reads the next), so a number is always defined before use.
"""

from __future__ import annotations

import struct
from itertools import chain
from operator import itemgetter
from typing import Final

from metricgate.model import Batch, MetricKind, MetricPoints, Series
from metricgate.model.caches import register
from metricgate.pipeline.persistent_queue import BatchCodec

RESET: Final = 1
DEFINE: Final = 2
NUMBERS: Final = 3
OTLP: Final = 4

_RECORD: Final = struct.Struct(">BI")
_COUNT: Final = struct.Struct("=I")
MAX_SERIES: Final = 1_000_000
"""Series numbered on one connection before both tables start again."""
_NUMBER_KINDS: Final = (MetricKind.GAUGE, MetricKind.SUM)


class Outgoing:
    """The sending end of one connection: numbers its series, writes records."""

    __slots__ = ("__weakref__", "_numbers", "_released", "_sent", "codec", "max_series")

    def __init__(self, codec: BatchCodec, max_series: int = MAX_SERIES) -> None:
        self.codec = codec
        self.max_series = max_series
        self._numbers: dict[int, int] = {}
        """`id()` of a series -> its number: `_sent` keeps the series alive, so no other object
        can have that id (and `id` costs no Python `__hash__` call per point)."""
        self._sent: list[Series] = []
        self._released = False
        """The table was emptied while the other end still holds it: the next body says so."""
        register(self)

    def reset(self) -> None:
        """A new connection (or a full table): the other end knows no number."""
        self._numbers = {}
        self._sent = []
        self._released = False

    def release(self) -> int:
        """The memory limiter's call (`model.caches`): forget every number here, and (with a
        `RESET` record in the next body) at the other end."""
        count = len(self._sent)
        if count:
            self.reset()
            self._released = True
        return count

    def __len__(self) -> int:
        return len(self._sent)

    def encode(self, batch: Batch) -> bytes:
        out: list[bytes] = []
        if self._released:
            self._released = False
            _record(out, RESET, b"")
        numbered: list[MetricPoints] = []
        others: list[MetricPoints] = []
        for group in batch.metrics:
            if group.series:
                plain = group.metric.kind in _NUMBER_KINDS and not group.exemplars
                (numbered if plain else others).append(group)
        if others:
            _record(out, OTLP, self.codec.encode(Batch(others)))
        if not numbered:
            return b"".join(out)
        series = chain.from_iterable(group.series for group in numbered)
        found = list(map(self._numbers.get, map(id, series)))
        if None in found:
            found = self._define(numbered, found, out)
        count, total = len(numbered), len(found)
        data = struct.pack(
            _numbers_format(count, total),
            count,
            *[len(group.series) for group in numbered],
            *found,
            *chain.from_iterable(group.values for group in numbered),
            *chain.from_iterable(group.timestamps for group in numbered),
            *chain.from_iterable(group.start_timestamps for group in numbered),
            *chain.from_iterable(group.flags for group in numbered),
        )
        _record(out, NUMBERS, data)
        return b"".join(out)

    def _define(
        self, groups: list[MetricPoints], found: list[int | None], out: list[bytes]
    ) -> list[int | None]:
        """Number the new series of `groups` (writing one definition per group that has any);
        the number of every point's series."""
        if len(self._sent) + found.count(None) > self.max_series:
            self.reset()
            _record(out, RESET, b"")
        numbers, sent = self._numbers, self._sent
        for group in groups:
            new = [s for s in dict.fromkeys(group.series) if id(s) not in numbers]
            if not new:
                continue
            zeros = [0] * len(new)
            points = MetricPoints(group.metric, new, [0.0] * len(new), [1] * len(new), zeros, zeros)
            _record(out, DEFINE, self.codec.encode(Batch([points])))
            for each in new:
                numbers[id(each)] = len(sent)
                sent.append(each)
        return list(map(numbers.get, map(id, chain.from_iterable(g.series for g in groups))))


class Incoming:
    """The receiving end of one connection: the series by number, and decoding."""

    def __init__(self, codec: BatchCodec) -> None:
        self.codec = codec
        self._series: list[Series] = []

    def decode(self, body: bytes | memoryview) -> Batch:
        """The batch of one body; `ValueError` if it does not read."""
        view = memoryview(body)
        groups: list[MetricPoints] = []
        position = 0
        while position < len(view):
            kind, length = _RECORD.unpack_from(view, position)
            start = position + _RECORD.size
            position = start + length
            if position > len(view):
                raise ValueError("a record runs past the body")
            record = view[start:position]
            if kind == NUMBERS:
                groups.extend(self._numbers(record))
            elif kind == OTLP:
                batch, rejected = self.codec.decode(bytes(record))
                if rejected:
                    raise ValueError(f"{rejected} points of a routed batch do not decode")
                groups.extend(batch.metrics)
            elif kind == DEFINE:
                batch, rejected = self.codec.decode(bytes(record))
                if rejected or len(batch.metrics) != 1:
                    raise ValueError("a series definition does not decode")
                self._series.extend(batch.metrics[0].series)
            elif kind == RESET:
                self._series = []
            else:
                raise ValueError(f"unknown record kind {kind}")
        return Batch(groups)

    def _numbers(self, record: memoryview) -> list[MetricPoints]:
        (count,) = _COUNT.unpack_from(record)
        sizes = struct.unpack_from(f"={count}I", record, _COUNT.size)
        total = sum(sizes)
        if (
            count == 0
            or 0 in sizes
            or len(record) != struct.calcsize(_numbers_format(count, total))
        ):
            raise ValueError("a number record does not read")
        fields = struct.unpack_from(_numbers_format(count, total), record)
        position = 1 + count
        numbers = fields[position : position + total]
        if max(numbers) >= len(self._series):
            raise ValueError("a number record names a series never defined")
        table = self._series
        series = list(itemgetter(*numbers)(table)) if total > 1 else [table[numbers[0]]]
        columns = list(fields[position + total :])  # values, times, starts, flags: one list
        if count == 1:
            return [
                MetricPoints(
                    series[0].metric,
                    series,
                    columns[:total],
                    columns[total : 2 * total],
                    columns[2 * total : 3 * total],
                    columns[3 * total :],
                )
            ]
        groups = []
        end = 0
        for size in sizes:
            begin, end = end, end + size
            groups.append(
                MetricPoints(
                    series[begin].metric,
                    series[begin:end],
                    columns[begin:end],
                    columns[total + begin : total + end],
                    columns[2 * total + begin : 2 * total + end],
                    columns[3 * total + begin : 3 * total + end],
                )
            )
        return groups


def _numbers_format(count: int, total: int) -> str:
    """The `struct` format of a `NUMBERS` record of `count` groups and `total` points."""
    return f"=I{count}I{total}I{total}d{total}q{total}q{total}i"


def _record(out: list[bytes], kind: int, data: bytes) -> None:
    out.append(_RECORD.pack(kind, len(data)))
    out.append(data)
