"""Label names, label merging, escaping and value formatting."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from metricgate.translate.labels import (
    InvalidLabelNameError,
    escape_help,
    escape_label_value,
    format_value,
    merge_label_pairs,
    prometheus_label_name,
)
from metricgate.translate.names import LABEL_NAME_RE


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        # The reference examples.
        ("label.with.dots", "label_with_dots"),
        ("123label", "key_123label"),
        (".foo", "_foo"),
        # Runs collapse, whether underscores, invalid characters or both.
        ("a..b", "a_b"),
        ("a__b", "a_b"),
        ("a._-b", "a_b"),
        ("http.status_code", "http_status_code"),
        ("trailing.", "trailing_"),
        ("__foo", "_foo"),
        ("_foo", "_foo"),
        ("1", "key_1"),
        ("..1", "_1"),
        ("naïve", "na_ve"),
        ("a:b", "a_b"),
        # Reserved `__x__` names keep their double underscores; the middle is sanitised.
        ("__name__", "__name__"),
        ("__meta.k8s..pod__", "__meta_k8s_pod__"),
        ("__1__", "__1__"),
        ("___a__", "___a__"),
    ],
)
def test_label_name(key: str, expected: str) -> None:
    assert prometheus_label_name(key) == expected


@pytest.mark.parametrize("key", ["", "_", "__", "____", "_____", "..", "日本", "\n"])
def test_label_name_without_valid_character_raises(key: str) -> None:
    with pytest.raises(InvalidLabelNameError):
        prometheus_label_name(key)


def test_label_name_error_names_the_key() -> None:
    with pytest.raises(InvalidLabelNameError, match=r"'\.\.'"):
        prometheus_label_name("..")


@given(st.text())
def test_any_key_gives_a_valid_label_name_or_invalid_label_error(key: str) -> None:
    try:
        name = prometheus_label_name(key)
    except InvalidLabelNameError:
        return
    assert LABEL_NAME_RE.match(name)
    assert prometheus_label_name(name) == name  # idempotent: translated names pass through


def test_merge_joins_colliding_keys_in_key_order() -> None:
    pairs = [("b.c", "2"), ("b_c", "3"), ("a", "x"), ("b-c", "1")]
    assert merge_label_pairs(pairs) == (("a", "x"), ("b_c", "1;2;3"))


def test_merge_skips_invalid_keys_and_keeps_empty_values() -> None:
    pairs = [("", "lost"), ("..", "lost"), ("zone", ""), ("1x", "v")]
    assert merge_label_pairs(pairs) == (("key_1x", "v"), ("zone", ""))


def test_merge_joins_repeated_keys_in_input_order() -> None:
    assert merge_label_pairs([("k", "second"), ("j", "x"), ("k", "first")]) == (
        ("j", "x"),
        ("k", "second;first"),
    )


def test_merge_of_nothing() -> None:
    assert merge_label_pairs([]) == ()
    assert merge_label_pairs(iter([("a", "1")])) == (("a", "1"),)


@given(st.lists(st.tuples(st.text(max_size=6), st.text(max_size=4))))
def test_merge_gives_unique_sorted_valid_names(pairs: list[tuple[str, str]]) -> None:
    merged = merge_label_pairs(pairs)
    names = [name for name, _ in merged]
    assert names == sorted(set(names))
    assert all(LABEL_NAME_RE.match(name) for name in names)
    # No value is lost: each valid pair's value is in its name's joined value.
    by_name = dict(merged)
    for key, value in pairs:
        try:
            name = prometheus_label_name(key)
        except InvalidLabelNameError:
            continue
        assert value in by_name[name]


def _unescape(text: str, escapable: str) -> str:
    """Reverse of the exposition escaping; rejects escapes the writer never produces."""
    out, chars = [], iter(text)
    for char in chars:
        if char == '"' and '"' in escapable:
            raise AssertionError(f"unescaped quote in {text!r}")
        if char == "\n":
            raise AssertionError(f"raw newline in {text!r}")
        if char != "\\":
            out.append(char)
            continue
        escaped = next(chars)  # a lone trailing backslash raises StopIteration: a failure
        assert escaped in escapable, f"unexpected escape \\{escaped} in {text!r}"
        out.append("\n" if escaped == "n" else escaped)
    return "".join(out)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("plain", "plain"),
        ('say "hi"', 'say \\"hi\\"'),
        ("C:\\path", "C:\\\\path"),
        ("two\nlines", "two\\nlines"),
        ('\\"\n', '\\\\\\"\\n'),
        ("\\n", "\\\\n"),
        ("", ""),
    ],
)
def test_escape_label_value(value: str, expected: str) -> None:
    assert escape_label_value(value) == expected


def test_escape_help_keeps_quotes() -> None:
    assert escape_help('a "b"\\c\nd') == 'a "b"\\\\c\\nd'


@given(st.text())
def test_escape_label_value_round_trips(value: str) -> None:
    assert _unescape(escape_label_value(value), '\\"n') == value


@given(st.text())
def test_escape_help_round_trips(text: str) -> None:
    assert _unescape(escape_help(text), "\\n") == text


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (math.inf, "+Inf"),
        (-math.inf, "-Inf"),
        (math.nan, "NaN"),
        (0.0, "0"),
        (-0.0, "-0"),
        (1.0, "1"),
        (-3.0, "-3"),
        (1.5, "1.5"),
        (0.1, "0.1"),
        (1e-05, "1e-05"),
        (0.0001, "0.0001"),
        (1e6, "1000000"),
        (123456789.0, "123456789"),
        (999999999999999.0, "999999999999999"),
        (1234567.5, "1234567.5"),
        (1e15, "1000000000000000.0"),
        (1e16, "1e+16"),
        (-1e300, "-1e+300"),
        (5e-324, "5e-324"),
        (7, "7"),
    ],
)
def test_format_value(value: float, expected: str) -> None:
    assert format_value(value) == expected


@given(st.floats(allow_nan=False))
def test_format_value_round_trips(value: float) -> None:
    text = format_value(value)
    parsed = float(text.replace("Inf", "inf"))
    assert parsed == value and math.copysign(1.0, parsed) == math.copysign(1.0, value)
    assert "e" not in text or not float(text).is_integer() or abs(value) >= 1e15
