"""Hypothesis strategies for OTLP number data points: any attributes, values, exemplars, flags."""

from __future__ import annotations

from hypothesis import strategies as st
from opentelemetry.proto.metrics.v1 import metrics_pb2 as pb

from tests.receivers.otlp_data import (
    SPAN_ID,
    TRACE_ID,
    key_values,
)

_scalars = st.one_of(
    st.text(max_size=8),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    st.binary(max_size=6),
    st.none(),
)


_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.text(max_size=4), inner, max_size=3),
    ),
    max_leaves=6,
)


attribute_lists = st.lists(st.tuples(st.text(max_size=6), _values), max_size=6)


_number_value = st.one_of(st.integers(-(2**63), 2**63 - 1), st.floats())


def _with_value(message: pb.NumberDataPoint | pb.Exemplar, value: int | float) -> None:
    if isinstance(value, int):
        message.as_int = value
    else:
        message.as_double = value


def _make_exemplar(
    value: int | float, time: int, trace: bytes, span: bytes, attributes: list[object]
) -> pb.Exemplar:
    exemplar = pb.Exemplar(
        time_unix_nano=time,
        trace_id=trace,
        span_id=span,
        filtered_attributes=key_values(attributes),  # type: ignore[arg-type]
    )
    _with_value(exemplar, value)
    return exemplar


_exemplar = st.builds(
    _make_exemplar,
    _number_value,
    st.integers(0, 2**64 - 1),
    st.sampled_from([b"", TRACE_ID]),
    st.sampled_from([b"", SPAN_ID]),
    attribute_lists,
)


def _make_point(
    attributes: list[object],
    value: int | float,
    time: int,
    start: int,
    flags: int,
    exemplars: list[pb.Exemplar],
) -> pb.NumberDataPoint:
    point = pb.NumberDataPoint(
        attributes=key_values(attributes),  # type: ignore[arg-type]
        time_unix_nano=time,
        start_time_unix_nano=start,
        flags=flags,
        exemplars=exemplars,
    )
    _with_value(point, value)
    return point


number_data_points = st.builds(
    _make_point,
    attribute_lists,
    _number_value,
    st.integers(1, 2**64 - 1),
    st.one_of(st.just(0), st.integers(0, 2**64 - 1)),
    st.sampled_from([0, 0, 1, 2]),
    st.lists(_exemplar, max_size=2),
)
