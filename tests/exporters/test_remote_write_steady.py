"""A steady group of gauges or counters written at once gives exactly what the per-point loop gives.

Two encoders see the same batches, one with the at-once path (`steady.write_numbers`) switched
off; their fragments (bytes, sample and point counts, cuts, shards) and drops must be equal for
any values (0, -0, NaN, negatives), timestamps (one or several, short and long varints), flags,
series sets (known, new, mixed), shard counts and fragment sizes.
"""

from __future__ import annotations

import math
from unittest import mock

from hypothesis import given, settings
from hypothesis import strategies as st

from metricgate.exporters.prometheus_remote_write import Encoder
from metricgate.exporters.prometheus_remote_write import encoder as encoder_module
from metricgate.exporters.prometheus_remote_write.steady import write_numbers
from metricgate.model import FLAG_NO_RECORDED_VALUE, INTERNER, Batch, MetricKind, MetricPoints
from metricgate.translate import PrometheusTranslator
from metricgate.wire.protowire import varint
from metricgate.wire.remotewrite.encode import timestamp_tail
from tests.support.batches import metric

NS = 1_700_000_000_000_000_000

values = st.one_of(
    st.just(0.0),
    st.just(-0.0),
    st.just(math.nan),
    st.just(-1.0),
    st.floats(allow_nan=False),
    st.integers(0, 10**6),
)
stamps = st.sampled_from([NS, NS + 15_000_000_000, 1_000_000, 0])
points = st.tuples(st.integers(0, 40), values, stamps, st.sampled_from([0, 0, 0, 1]))
rounds = st.lists(
    st.lists(points, min_size=0, max_size=40, unique_by=lambda point: point[0]),
    min_size=1,
    max_size=3,
)


def encode_all(
    kind: MetricKind, monotonic: bool, batches: list[list[tuple[int, float, int, int]]], **kw: int
) -> list[object]:
    enc = Encoder(PrometheusTranslator(), target_info=False, max_samples=kw["max_samples"])
    m = metric("steady_total" if monotonic else "steady", kind=kind, monotonic=monotonic)
    out: list[object] = []
    for round_number, points in enumerate(batches):
        group = MetricPoints(m)
        seen = set()
        for key, value, stamp, stale in points:
            if key in seen:
                continue  # a series once per group, as every receiver delivers it
            seen.add(key)
            flags = FLAG_NO_RECORDED_VALUE if stale else 0
            group.append(INTERNER.intern_series(m, (("k", str(key)),)), value, stamp, 0, flags)
        per_shard, drops = enc.encode(Batch([group]), kw["shards"], float(round_number))
        enc._runs.fold()  # memoised runs keep their time apart until folded
        out.append(
            (
                [[(f.data, f.samples, f.points) for f in shard] for shard in per_shard],
                dict(drops),
                sorted((s.attributes, st.updated) for s, st in enc._states.items()),
            )
        )
    return out


@settings(max_examples=300, deadline=None)
@given(
    rounds,
    st.sampled_from([(MetricKind.GAUGE, False), (MetricKind.SUM, True), (MetricKind.SUM, False)]),
    st.integers(1, 4),
    st.integers(0, 12),
    st.one_of(
        st.none(),
        st.tuples(
            st.lists(values, min_size=41, max_size=41),
            st.lists(st.sampled_from([NS, NS + 1_000_000]), min_size=41, max_size=41),
            stamps,
        ),
    ),
)
def test_at_once_equals_per_point(
    batches: list[list[tuple[int, float, int, int]]],
    kind: tuple[MetricKind, bool],
    shards: int,
    max_samples: int,
    again: tuple[list[float], list[int], int] | None,
) -> None:
    if again is not None:  # the same series again in runs of a few timestamps: a steady round
        new_values, new_stamps, stamp = again
        known = [(k, v, stamp, 0) for k, v in enumerate(new_values[: 8 + len(batches[0])])]
        batches = [known, [(k, new_values[-1 - k], new_stamps[k], 0) for k, _, _, _ in known]]
    fast = encode_all(*kind, batches, shards=shards, max_samples=max_samples)
    with mock.patch.object(encoder_module, "write_numbers", lambda *a, **k: False):
        slow = encode_all(*kind, batches, shards=shards, max_samples=max_samples)
    assert fast == slow


def test_steady_group_takes_the_at_once_path() -> None:
    """A scrape-like round of new or known series is written at once, not point by point."""
    answers: list[bool] = []
    real = write_numbers

    def spy(*args: object, **kwargs: object) -> bool:
        answers.append(real(*args, **kwargs))  # type: ignore[arg-type]
        return answers[-1]

    batches = [[(k, float(k), NS + k // 8 * 1_000_000, 0) for k in range(20)]] * 2
    with mock.patch.object(encoder_module, "write_numbers", spy):
        encode_all(MetricKind.SUM, True, batches, shards=1, max_samples=7)
        encode_all(MetricKind.SUM, True, batches, shards=2, max_samples=7)
    # New series get their states on the way, then they are steady; over 1 or 2 shards alike.
    assert answers == [True, True, True, True]


@given(st.one_of(st.integers(-(2**63), 2**63 - 1), st.integers(2**35 - 2, 2**42 + 1)))
def test_timestamp_tail_is_the_varint_field(ms: int) -> None:
    """The unrolled 6-byte form equals the general varint, at and around its edges."""
    assert timestamp_tail(ms) == (b"\x10" + varint(ms) if ms else b"")
