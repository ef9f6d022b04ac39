"""The text parser: both formats, strictness with line numbers, the cached fast path."""

from __future__ import annotations

import contextlib
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metricgate.wire.exposition import ExpositionError, Page, TextParser


def parse(text: str, openmetrics: bool = False) -> Page:
    return TextParser(openmetrics=openmetrics).parse(text)


def samples(page: Page) -> list[tuple[str, dict[str, str], float]]:
    return [(e.name, dict(e.labels), v) for e, v in zip(page.entries, page.values, strict=True)]


def test_text_format_samples_families_and_roles() -> None:
    page = parse(
        "# HELP http_requests_total Requests.\n"
        "# TYPE http_requests_total counter\n"
        'http_requests_total{method="GET",code="200"} 1027 1395066363000\n'
        "# A plain comment\n"
        "\n"
        "# TYPE rpc_duration_seconds summary\n"
        'rpc_duration_seconds{quantile="0.5"} 4773\n'
        "rpc_duration_seconds_sum 1.7560473e+07\n"
        "rpc_duration_seconds_count 2693\n"
        "# TYPE latency histogram\n"
        'latency_bucket{le="0.5", } 1\n'
        'latency_bucket{le="+Inf"} 3\n'
        "latency_sum 2.5\n"
        "latency_count 3\n"
        "untyped_thing -Inf\n"
        "nan_thing NaN\n"
    )
    assert samples(page)[0] == ("http_requests_total", {"code": "200", "method": "GET"}, 1027)
    assert page.timestamps == {0: 1395066363000}
    roles = [(page.resolve(e)[0].name, page.resolve(e)[1]) for e in page.entries]
    assert roles == [
        ("http_requests_total", ""),
        ("rpc_duration_seconds", ""),
        ("rpc_duration_seconds", "_sum"),
        ("rpc_duration_seconds", "_count"),
        ("latency", "_bucket"),
        ("latency", "_bucket"),
        ("latency", "_sum"),
        ("latency", "_count"),
        ("untyped_thing", ""),
        ("nan_thing", ""),
    ]
    assert page.families["http_requests_total"].help == "Requests."
    assert page.values[8] == -math.inf and math.isnan(page.values[9])
    assert page.lines == [3, 7, 8, 9, 11, 12, 13, 14, 15, 16]


def test_openmetrics_counters_created_exemplars_units() -> None:
    page = parse(
        "# TYPE foo_seconds counter\n"
        "# UNIT foo_seconds seconds\n"
        '# HELP foo_seconds A \\"quoted\\" help.\n'
        'foo_seconds_total{a="b"} 17 1520879607.789 # {trace_id="KOO5S4vxi0o"} 0.67\n'
        'foo_seconds_created{a="b"} 1520430000.123\n'
        "# EOF\n",
        openmetrics=True,
    )
    family, role = page.resolve(page.entries[0])
    assert (family.name, family.type, family.unit, role) == (
        "foo_seconds",
        "counter",
        "seconds",
        "_total",
    )
    assert family.help == 'A "quoted" help.'
    assert page.timestamps == {0: 1520879607789}
    assert page.exemplars is not None and page.exemplars[0].labels == (("trace_id", "KOO5S4vxi0o"),)
    assert page.resolve(page.entries[1])[1] == "_created"


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("a 1\nb{c=d} 1\n", 2, "expected '\"'"),
        ('a{b="1",b="2"} 1\n', 1, "label b given twice"),
        ("a 1\n# TYPE a gauge\n", 2, "TYPE line for a after its samples"),
        ("# TYPE a gauge\n# TYPE a counter\n", 2, "second TYPE line"),
        ("# TYPE a nonsense\n", 1, "unknown type"),
        ("a 1e309\n", 1, "out of range"),
        ("a 0x10\n", 1, "invalid value"),
        ("a 1_000\n", 1, "invalid value"),
        ("a 1 2 3\n", 1, "expected a value"),
        ("a 1 1.5\n", 1, "invalid timestamp"),
        ('a{b="\\t"} 1\n', 1, "invalid escape"),
        ('a{b="x} 1\n', 1, "unterminated"),
        ("1a 1\n", 1, "expected a metric name"),
        ('a{1b="x"} 1\n', 1, "invalid label name"),
    ],
)
def test_text_errors_name_the_line(text: str, line: int, message: str) -> None:
    with pytest.raises(ExpositionError, match=message) as caught:
        parse(text)
    assert caught.value.line == line


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a 1\n", "must end with # EOF"),
        ("a 1\n# EOF\nb 1\n", "content after # EOF"),
        ("a 1\n\n# EOF\n", "blank lines"),
        ("# plain comment\n# EOF\n", "unexpected line"),
        ("a  1\n# EOF\n", "one space"),
        ('a{b="c",} 1\n# EOF\n', "invalid label name"),
        ("# TYPE a counter\na 1\n# EOF\n", "does not fit counter a"),
        ("# TYPE a_bytes gauge\n# UNIT a_bytes seconds\n# EOF\n", "does not end with its unit"),
        ('# TYPE a gauge\na 1 # {x="y"} 1\n# EOF\n', "exemplars are not allowed on a"),
        ("a 1 1520879607000x\n# EOF\n", "invalid value"),
    ],
)
def test_openmetrics_is_strict(text: str, message: str) -> None:
    with pytest.raises(ExpositionError, match=message):
        parse(text, openmetrics=True)


def test_repeated_series_are_listed_not_fatal() -> None:
    page = parse('a{x="1"} 1\nb 2\na{x="1"} 3\n')
    assert samples(page) == [("a", {"x": "1"}, 1), ("b", {}, 2)]
    assert page.duplicates == [3]


def test_fast_path_matches_the_full_parse_across_pages() -> None:
    parser = TextParser()
    first = 'a{x="1 2"} 1\nb 2\nc{y="} z"} 3\n'
    parser.parse(first)
    page = parser.parse('a{x="1 2"} 4\nb 5 1000\nc{y="} z"} 6\nb {z="w"} 7\n')
    assert samples(page) == [
        ("a", {"x": "1 2"}, 4),
        ("b", {}, 5),
        ("c", {"y": "} z"}, 6),
        ("b", {"z": "w"}, 7),
    ]
    assert page.timestamps == {1: 1000}
    again = parser.parse(first)
    assert again.entries[0] is page.entries[0]
    # A known series followed by a bad value is still an error on the fast path.
    with pytest.raises(ExpositionError, match="line 2: invalid value"):
        parser.parse("b 1\nb 1_0\n")
    with pytest.raises(ExpositionError, match="out of range"):
        parser.parse("b 1e999\n")


_names = st.from_regex(r"[a-zA-Z_:][a-zA-Z0-9_:]{0,12}", fullmatch=True)
_label_names = st.from_regex(r"[a-zA-Z][a-zA-Z0-9_]{0,8}", fullmatch=True)
_values = st.floats(allow_nan=False, allow_infinity=True) | st.integers(-(10**9), 10**9).map(float)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            _names,
            st.dictionaries(_label_names, st.text(max_size=10), max_size=4),
            _values,
            st.none() | st.integers(-(2**40), 2**40),
        ),
        max_size=12,
    ),
    st.booleans(),
)
def test_round_trip(
    rows: list[tuple[str, dict[str, str], float, int | None]], openmetrics: bool
) -> None:
    """Whatever is rendered (as a text format writer would) parses back to the same samples,
    twice in a row through one parser (so the second parse takes the cached path)."""

    def render(value: float) -> str:
        if math.isinf(value):
            return "+Inf" if value > 0 else "-Inf"
        return repr(value)

    def escape(value: str) -> str:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    seen = set()
    lines = []
    expected = []
    for name, labels, value, stamp in rows:
        key = (name, tuple(sorted(labels.items())))
        if key in seen:
            continue
        seen.add(key)
        body = ",".join(f'{k}="{escape(v)}"' for k, v in labels.items())
        head = f"{name}{{{body}}}" if labels else name
        tail = "" if stamp is None else (f" {stamp / 1000}" if openmetrics else f" {stamp}")
        lines.append(f"{head} {render(value)}{tail}")
        ms = None if stamp is None else (round(stamp / 1000 * 1000) if openmetrics else stamp)
        expected.append((name, labels, value, ms))
    if openmetrics:
        lines.append("# EOF")
    text = "".join(line + "\n" for line in lines)
    parser = TextParser(openmetrics=openmetrics)
    for _ in range(2):
        page = parser.parse(text)
        stamps = page.timestamps or {}
        got = [
            (e.name, dict(e.labels), v, stamps.get(i))
            for i, (e, v) in enumerate(zip(page.entries, page.values, strict=True))
        ]
        assert got == expected


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet='ab{}="\\ ,#\n\t0123456789.e+-_xTYPEHLPNaIf', max_size=60), st.booleans())
def test_anything_parses_or_raises_exposition_error(text: str, openmetrics: bool) -> None:
    parser = TextParser(openmetrics=openmetrics)
    for _ in range(2):
        with contextlib.suppress(ExpositionError):
            parser.parse(text)


def test_a_page_of_the_same_layout_is_read_like_a_fresh_one() -> None:
    layout = '# TYPE a gauge\na{x="1"} {}\n\nb {}\n# TYPE c counter\nc_total {}\n'
    parser = TextParser()
    first = parser.parse(layout.replace("{}", "1"))
    second = parser.parse(layout.replace("{}", "2.5"))
    assert second.shape is first.shape and second.values == [2.5, 2.5, 2.5]
    assert second.entries == first.entries and second.lines == first.lines
    for text in (
        layout.replace("{}", "+Inf"),
        layout.replace("{}", "NaN"),
        layout.replace("{}", "3 1000"),
        layout.replace("{}", "4").replace('x="1"', 'x="2"'),
        layout.replace("{}", "5").replace("\n\n", "\nd 1\n"),
    ):
        assert repr(samples(parser.parse(text))) == repr(samples(TextParser().parse(text)))
    for bad in (
        layout.replace("{}", "1_0"),
        layout.replace("{}", "1e999"),
        layout.replace("{}", "٣"),
    ):
        with pytest.raises(ExpositionError, match="line 2"):
            parser.parse(bad)


_POOL = (
    "# TYPE a gauge",
    'a{x="1"} 1',
    'a{x="1"} 2',
    'a{x="2"} 0',
    "b 3 1000",
    "c_total 4",
    "c_total 4",
    "",
    "d{} NaN",
    'e{y="z"} 5 # {trace_id="ab"} 1.0',
    "f 1_0",
)


def _fields(page: Page) -> tuple[object, ...]:
    return (
        [(e.name, e.labels) for e in page.entries],
        repr(page.values),
        page.lines,
        page.timestamps,
        page.exemplars,
        {name: repr(meta) for name, meta in page.families.items()},
        page.duplicates,
        page.schema,
    )


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.lists(st.sampled_from(_POOL), max_size=6), min_size=1, max_size=3),
    st.lists(st.integers(0, 2), min_size=1, max_size=8),
    st.booleans(),
)
def test_a_page_seen_again_is_what_a_fresh_parser_gives(
    layouts: list[list[str]], order: list[int], openmetrics: bool
) -> None:
    """Pages repeated byte for byte, or in the same layout, parse as a fresh parser parses them;
    changing a returned page changes nothing for the next parse of the same text."""
    texts = ["\n".join(lines) + ("\n# EOF\n" if openmetrics else "\n") for lines in layouts]
    parser = TextParser(openmetrics=openmetrics)
    for index in order:
        text = texts[index % len(texts)]
        try:
            expected = _fields(TextParser(openmetrics=openmetrics).parse(text))
        except ExpositionError as exc:
            with pytest.raises(ExpositionError, match=str(exc.line)):
                parser.parse(text)
            continue
        page = parser.parse(text)
        assert _fields(page) == expected
        page.values.clear()
        page.entries.clear()
        page.lines.clear()
