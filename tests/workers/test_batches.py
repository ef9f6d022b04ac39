"""What one worker writes for another (`workers.batches`) reads back as the same batch: the same
series, values bit for bit (staleness NaNs included), times and flags, across new and
known series, tables that fill up and start again, and groups that travel as OTLP."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metricgate.model import INTERNER, Batch, MetricKind, MetricPoints
from metricgate.model.points import HistogramPoint
from metricgate.pipeline.persistent_queue import BatchCodec
from metricgate.workers.batches import Incoming, Outgoing
from tests.support.batches import metric

NS = 1_700_000_000_000_000_000
STALE_NAN = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]

values = st.one_of(
    st.floats(allow_nan=False),
    st.just(STALE_NAN),
    st.just(-0.0),
)


@st.composite
def batches(draw: st.DrawFn) -> Batch:
    groups = []
    for name in draw(st.lists(st.sampled_from("abcdef"), min_size=0, max_size=4)):
        kind = draw(st.sampled_from([MetricKind.GAUGE, MetricKind.SUM, MetricKind.HISTOGRAM]))
        group = MetricPoints(metric(f"m_{name}", kind=kind, monotonic=kind is MetricKind.SUM))
        for key in draw(st.lists(st.integers(0, 30), min_size=1, max_size=12)):
            series = INTERNER.intern_series(group.metric, (("k", f"v{key}"),))
            value = (
                HistogramPoint(2, 3.0, (1.0,), (1, 1))
                if kind is MetricKind.HISTOGRAM
                else draw(values)
            )
            start = draw(st.sampled_from([0, NS - 10**9]))
            group.append(
                series,
                value,
                NS + draw(st.integers(0, 10**9)),
                start,
                draw(st.sampled_from([0, 1])),
            )
        groups.append(group)
    return Batch(groups)


def rows(batch: Batch) -> list[tuple[object, ...]]:
    out = []
    for group in batch.metrics:
        for series, value, time, start, flags in group.rows():
            bits = struct.pack("<d", value) if isinstance(value, float) else value
            out.append((group.metric, series, bits, time, start, flags))
    return sorted(out, key=repr)


@settings(max_examples=60, deadline=None)
@given(st.lists(batches(), min_size=1, max_size=6), st.integers(3, 40))
def test_batches_read_back_as_sent(sent: list[Batch], max_series: int) -> None:
    outgoing = Outgoing(BatchCodec(), max_series=max_series)
    incoming = Incoming(BatchCodec())
    for batch in sent:
        received = incoming.decode(outgoing.encode(batch))
        assert rows(received) == rows(batch)
        for group in received.metrics:
            assert all(s.metric is group.metric for s in group.series)


def test_known_series_travel_as_numbers_only() -> None:
    group = MetricPoints(metric("known"))
    for key in range(50):
        group.append(INTERNER.intern_series(group.metric, (("k", str(key)),)), 1.0, NS)
    outgoing, incoming = Outgoing(BatchCodec()), Incoming(BatchCodec())
    first = outgoing.encode(Batch([group]))
    second = outgoing.encode(Batch([group]))
    assert b"known" in first and b"known" not in second
    assert len(second) < len(first)
    (read,) = incoming.decode(first).metrics
    (again,) = incoming.decode(second).metrics
    assert again.series == group.series
    # by number: the very series the first read made, nothing decoded again
    assert all(a is b for a, b in zip(again.series, read.series, strict=True))


def test_a_new_connection_defines_its_series_again() -> None:
    group = MetricPoints(metric("again"))
    group.append(INTERNER.intern_series(group.metric, (("k", "1"),)), 2.0, NS)
    outgoing = Outgoing(BatchCodec())
    outgoing.encode(Batch([group]))
    outgoing.reset()
    fresh = Incoming(BatchCodec())
    (read,) = fresh.decode(outgoing.encode(Batch([group]))).metrics
    assert read.values == [2.0]


@pytest.mark.parametrize(
    "body",
    [
        b"\x03\x00\x00\x00\x10" + b"\x00" * 4,  # a number record shorter than it says
        b"\x03\x00\x00\x00\x04" + struct.pack("=I", 0),  # no group
        b"\x09\x00\x00\x00\x00",  # unknown record
        b"\x03\x00\x00\x00\x30"
        + struct.pack("=II", 1, 1)
        + struct.pack("=Idqqi", 7, 1.0, NS, 0, 0),
    ],
    ids=["short", "empty", "unknown kind", "undefined number"],
)
def test_a_body_that_does_not_read_is_refused(body: bytes) -> None:
    with pytest.raises((ValueError, struct.error)):
        Incoming(BatchCodec()).decode(body)


def test_nan_bits_survive() -> None:
    group = MetricPoints(metric("stale", kind=MetricKind.GAUGE))
    group.append(INTERNER.intern_series(group.metric, ()), STALE_NAN, NS, 0, 1)
    (read,) = Incoming(BatchCodec()).decode(Outgoing(BatchCodec()).encode(Batch([group]))).metrics
    assert math.isnan(read.values[0])
    assert struct.pack("<d", read.values[0]) == struct.pack("<d", STALE_NAN)
    assert read.flags == [1]


def test_the_memory_limiter_empties_the_table_at_both_ends() -> None:
    from metricgate.model.caches import release_caches

    group = MetricPoints(metric("released"))
    for key in range(20):
        group.append(INTERNER.intern_series(group.metric, (("k", str(key)),)), 3.0, NS)
    outgoing, incoming = Outgoing(BatchCodec()), Incoming(BatchCodec())
    incoming.decode(outgoing.encode(Batch([group])))
    assert len(outgoing) == 20
    assert release_caches() >= 20
    assert len(outgoing) == 0
    body = outgoing.encode(Batch([group]))
    assert body[0] == 1  # RESET first, then the series defined again
    (read,) = incoming.decode(body).metrics
    assert read.series == group.series and len(incoming._series) == 20
