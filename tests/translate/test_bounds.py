"""`le` and `quantile` label texts: Go's shortest `%g`, checked against an exact reference, and
the positions written when texts repeat."""

from __future__ import annotations

import math
import struct
from fractions import Fraction

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from metricgate.translate.bounds import bound_labels, go_float


def _neighbours(value: float) -> tuple[float, float]:
    """The floats just below and above positive finite `value` (inf above the largest)."""
    bits = struct.unpack("<q", struct.pack("<d", value))[0]
    below = struct.unpack("<d", struct.pack("<q", bits - 1))[0] if bits > 0 else 0.0
    above = struct.unpack("<d", struct.pack("<q", bits + 1))[0]
    return below, above


def reference_shortest(value: float) -> tuple[str, int]:
    """(digits, point) of the shortest decimal that reads back as positive finite `value`, the
    one closest to it when several have that length: the definition Go's `FormatFloat(v, 'g',
    -1, 64)` implements. Worked out with exact fractions, independently of `repr`."""
    exact = Fraction(value)
    below, above = _neighbours(value)
    # Reading a decimal rounds to the nearest float, ties to the even mantissa: the interval of
    # decimals that read back as `value` runs halfway to each neighbour, ends included if even.
    low = (exact + Fraction(below)) / 2
    # Past the largest float, the next one would be one ulp further (reading rounds to inf there).
    high = (exact + (Fraction(above) if math.isfinite(above) else 2 * exact - Fraction(below))) / 2
    even = struct.unpack("<q", struct.pack("<d", value))[0] % 2 == 0
    power = math.floor(math.log10(value)) + 1  # a first guess at the decimal point's place
    while Fraction(10) ** power <= exact:
        power += 1
    while Fraction(10) ** (power - 1) > exact:
        power -= 1
    for length in range(1, 18):
        unit = Fraction(10) ** (power - length)
        floor = (exact / unit).__floor__()
        inside = []
        for scaled in (floor, floor + 1):
            candidate = scaled * unit
            if low < candidate < high or (even and candidate in (low, high)):
                inside.append((abs(candidate - exact), scaled % 2, scaled))
        if inside:
            scaled = min(inside)[2]  # nearest; a tie goes to the even digit
            digits = str(scaled)
            point = power - length + len(digits)
            return digits.rstrip("0"), point
    raise AssertionError(f"no decimal of up to 17 digits reads back as {value!r}")


def reference_go_float(value: float) -> str:
    """Go's `%g` layout around `reference_shortest`'s digits (exponent below -4 or from 6 on)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    sign = "-" if math.copysign(1.0, value) < 0 else ""
    if value == 0:
        return f"{sign}0"
    digits, point = reference_shortest(abs(value))
    exponent = point - 1
    if exponent < -4 or exponent >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'+' if exponent >= 0 else '-'}{abs(exponent):02d}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return f"{sign}{digits}{'0' * (point - len(digits))}"
    return f"{sign}{digits[:point]}.{digits[point:]}"


@pytest.mark.parametrize(
    ("value", "text"),
    [(1.0, "1"), (0.005, "0.005"), (10.0, "10"), (0.1, "0.1"), (2.5, "2.5"), (100.0, "100"),
     (123456.0, "123456"), (1e6, "1e+06"), (1234567.0, "1.234567e+06"), (2.5e6, "2.5e+06"),
     (0.0001, "0.0001"), (0.00012, "0.00012"), (1e-05, "1e-05"), (1.5e-07, "1.5e-07"),
     (1e21, "1e+21"), (1e100, "1e+100"), (5e-324, "5e-324"),
     (1.7976931348623157e308, "1.7976931348623157e+308"), (0.0, "0"), (-0.0, "-0"),
     (-2.5, "-2.5"), (math.inf, "+Inf"), (-math.inf, "-Inf"), (math.nan, "NaN"),
     (0.30000000000000004, "0.30000000000000004"), (1e15, "1e+15"), (123456.7, "123456.7")],
)  # fmt: skip
def test_go_float_vectors(value: float, text: str) -> None:
    assert go_float(value) == text
    assert reference_go_float(value) == text


@settings(max_examples=3000, deadline=None)
@given(st.floats(allow_nan=True, allow_infinity=True))
@example(2.0**-1074)
@example(2.0**-1022)
@example(9007199254740993.0)
@example(2.0**60)
def test_go_float_matches_the_reference_on_random_floats(value: float) -> None:
    assert go_float(value) == reference_go_float(value)


@settings(max_examples=500, deadline=None)
@given(st.integers(-330, 310), st.integers(1, 10**17))
def test_go_float_matches_the_reference_on_decimal_looking_floats(power: int, digits: int) -> None:
    value = float(f"{digits}e{power}")
    if math.isfinite(value):
        assert go_float(value) == reference_go_float(value)


def test_bound_labels_write_each_text_once() -> None:
    plain = bound_labels((0.005, 1.0, 10.0))
    assert plain.texts == ("0.005", "1", "10") and plain.keep is None
    repeated = bound_labels((1.0, 1.0, 2.0))
    assert repeated.texts == ("1", "1", "2") and repeated.keep == (1, 2)
    with_inf = bound_labels((1.0, math.inf))
    assert with_inf.keep == (0,)  # the +Inf bucket is written once, by the histogram itself
    assert bound_labels((1.0, 1.0, 2.0)) is repeated  # cached per tuple
