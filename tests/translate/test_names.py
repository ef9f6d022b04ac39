"""Metric names: every case of reference/prometheus-translation.md, edge cases, properties."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from metricgate.translate.names import (
    LABEL_NAME_RE,
    METRIC_NAME_RE,
    InvalidMetricNameError,
    prometheus_metric_name,
)

Kind = tuple[bool, bool]
"""(counter, gauge)"""
GAUGE: Kind = (False, True)
COUNTER: Kind = (True, False)
HISTOGRAM: Kind = (False, False)


def translate(
    kind: Kind, name: str, unit: str, namespace: str = "", *, add_suffixes: bool = True
) -> str:
    counter, gauge = kind
    return prometheus_metric_name(
        name, unit, counter=counter, gauge=gauge, namespace=namespace, add_suffixes=add_suffixes
    )


# (kind, name, unit, namespace, expected): the reference table, in its order.
REFERENCE_CASES = [
    (GAUGE, "system.filesystem.usage", "By", "", "system_filesystem_usage_bytes"),
    (COUNTER, "system.io", "By", "", "system_io_bytes_total"),
    (COUNTER, "network_transmitted_bytes_total", "By", "", "network_transmitted_bytes_total"),
    (GAUGE, "system.network.dropped", "{packets}", "", "system_network_dropped"),
    (COUNTER, "system.network.dropped", "{packets}", "", "system_network_dropped_total"),
    (GAUGE, "system.network.dropped", "packets", "", "system_network_dropped_packets"),
    (GAUGE, "hw.gpu.memory.utilization", "1", "", "hw_gpu_memory_utilization_ratio"),
    (COUNTER, "objects", "1", "", "objects_total"),
    (GAUGE, "broken.metric.speed", "km/h", "", "broken_metric_speed_km_per_hour"),
    (GAUGE, "astro.light.speed_limit", "m/s", "", "astro_light_speed_limit_meters_per_second"),
    (
        GAUGE,
        "mongodbatlas.process.oplog.rate",
        "GiBy/h",
        "",
        "mongodbatlas_process_oplog_rate_gibibytes_per_hour",
    ),
    (GAUGE, "x.object.rate", "{objects}/s", "", "x_object_rate_per_second"),
    (GAUGE, "3.14 digits", "", "", "_3_14_digits"),
    (GAUGE, "#test", "", "space", "space_test"),
    (COUNTER, "requests", "1/s", "app", "app_requests_per_second_total"),
    (GAUGE, "throughput", "By/s", "", "throughput_bytes_per_second"),
    (GAUGE, "custom_metric", "By/{custom}", "", "custom_metric_bytes"),
    (HISTOGRAM, "http.request.duration", "ms", "", "http_request_duration_milliseconds"),
]


@pytest.mark.parametrize(("kind", "name", "unit", "namespace", "expected"), REFERENCE_CASES)
def test_reference_case(kind: Kind, name: str, unit: str, namespace: str, expected: str) -> None:
    assert translate(kind, name, unit, namespace) == expected


def test_reference_invalid_name_raises_naming_the_input() -> None:
    with pytest.raises(InvalidMetricNameError, match=r"'@_#_\$_%'"):
        translate(GAUGE, "@_#_$_%", "")


@pytest.mark.parametrize(
    ("kind", "name", "unit", "namespace", "expected"),
    [
        # Runs of invalid characters and underscores collapse; colons are kept.
        (GAUGE, "a..__--b", "", "", "a_b"),
        (GAUGE, "job:requests:rate5m", "", "", "job:requests:rate5m"),
        (GAUGE, ":leading", "", "", ":leading"),
        (GAUGE, "_x_", "", "", "x"),
        (GAUGE, "héllo wörld", "", "", "h_llo_w_rld"),
        # Every `total` token goes and one is appended; other case spellings are not `total`.
        (COUNTER, "total.requests.total", "", "", "requests_total"),
        (COUNTER, "requests.Total", "", "", "requests_Total_total"),
        (GAUGE, "requests_total", "", "", "requests_total"),
        # Ratio only for gauges in exactly `1` (whitespace aside).
        (GAUGE, "cpu.ratio.used", "1", "", "cpu_used_ratio"),
        (GAUGE, "cpu.used", " 1 ", "", "cpu_used_ratio"),
        (HISTOGRAM, "cpu.used", "1", "", "cpu_used"),
        (GAUGE, "cpu.used", "1/s", "", "cpu_used_per_second"),
        # Unit tables, and a unit not in them sanitised and used as written.
        (GAUGE, "memory", "TiBy", "", "memory_tebibytes"),
        (GAUGE, "temp", "Cel", "", "temp_celsius"),
        (GAUGE, "usage", "%", "", "usage_percent"),
        (GAUGE, "uptime", " min ", "", "uptime_minutes"),
        (GAUGE, "area", "m²", "", "area_m"),
        (GAUGE, "flow", "l.min-1", "", "flow_l_min_1"),
        (GAUGE, "rate", "/mo", "", "rate_per_month"),
        (GAUGE, "rate", "By/", "", "rate_bytes"),
        (GAUGE, "rate", "By/ {x} ", "", "rate_bytes"),
        (GAUGE, "rate", "By/s/s", "", "rate_bytes_per_s_s"),
        (GAUGE, "rate", "/..", "", "rate"),
        # A suffix already in the name is not repeated, per-unit included.
        (GAUGE, "disk.bytes.used", "By", "", "disk_bytes_used"),
        (GAUGE, "requests.per.second", "1/s", "", "requests_per_second"),
        (GAUGE, "requests.per_second.x", "1/s", "", "requests_per_second_x"),
        (GAUGE, "second.requests", "1/s", "", "second_requests_per_second"),
        (GAUGE, "km.travelled", "km/h", "", "km_travelled_per_hour"),
        # Namespace is tokenised too; a leading digit anywhere in front gets `_`.
        (GAUGE, "up", "", "my-app", "my_app_up"),
        (GAUGE, "up", "", "1app", "_1app_up"),
        (GAUGE, "up", "", "..", "up"),
        (GAUGE, "9lives", "", "", "_9lives"),
    ],
)
def test_edge_case(kind: Kind, name: str, unit: str, namespace: str, expected: str) -> None:
    assert translate(kind, name, unit, namespace) == expected


@pytest.mark.parametrize(
    ("kind", "name", "unit", "expected"),
    [
        (COUNTER, "system.io", "By", "system_io"),
        (COUNTER, "requests_total", "", "requests_total"),
        (GAUGE, "hw.gpu.utilization", "1", "hw_gpu_utilization"),
        (GAUGE, "a..__b", "ms", "a_b"),
        (GAUGE, "3d", "", "_3d"),
    ],
)
def test_without_suffixes_only_sanitises(kind: Kind, name: str, unit: str, expected: str) -> None:
    assert translate(kind, name, unit, add_suffixes=False) == expected
    ns = translate(kind, name, unit, "ns", add_suffixes=False)
    assert ns == f"ns_{expected.removeprefix('_')}"


@pytest.mark.parametrize("name", ["", "_", "___", "...", "@_#_$_%", "日本語", " \n\t"])
@pytest.mark.parametrize("namespace", ["", "app"])
def test_name_without_valid_token_raises(name: str, namespace: str) -> None:
    # Even with a namespace or unit that would make the result non-empty.
    with pytest.raises(InvalidMetricNameError, match=re.escape(repr(name))):
        translate(COUNTER, name, "By", namespace)


def test_counter_and_gauge_together_is_a_caller_bug() -> None:
    with pytest.raises(ValueError, match="mutually exclusive") as caught:
        prometheus_metric_name("x", "", counter=True, gauge=True)
    assert not isinstance(caught.value, InvalidMetricNameError)


def test_name_regexes_reject_trailing_newline() -> None:
    assert METRIC_NAME_RE.match("up") and not METRIC_NAME_RE.match("up\n")
    assert LABEL_NAME_RE.match("job") and not LABEL_NAME_RE.match("job\n")
    assert METRIC_NAME_RE.match("a:b") and not LABEL_NAME_RE.match("a:b")


@given(
    name=st.text(),
    unit=st.text(),
    namespace=st.text(max_size=8),
    kind=st.sampled_from([GAUGE, COUNTER, HISTOGRAM]),
    add_suffixes=st.booleans(),
)
def test_any_text_gives_a_valid_name_or_invalid_name_error(
    name: str, unit: str, namespace: str, kind: Kind, add_suffixes: bool
) -> None:
    try:
        result = translate(kind, name, unit, namespace, add_suffixes=add_suffixes)
    except InvalidMetricNameError:
        return
    assert METRIC_NAME_RE.match(result)
    assert "__" not in result.lstrip("_")


@given(name=st.from_regex(r"[a-zA-Z:][a-zA-Z0-9:]*(_[a-zA-Z0-9:]+)*", fullmatch=True))
def test_clean_gauge_name_without_unit_is_unchanged(name: str) -> None:
    assert translate(GAUGE, name, "") == name
