"""Registering own metrics: the same call gives the same instrument, another one is refused."""

from __future__ import annotations

import pytest
from prometheus_client import generate_latest

from metricgate.errors import TelemetryConflictError
from metricgate.telemetry.metrics import SelfMetrics


def test_the_same_registration_returns_the_same_instrument() -> None:
    telemetry = SelfMetrics()
    first = telemetry.counter("metricgate_widget_spun", "Spins.", ["processor"])
    again = telemetry.counter("metricgate_widget_spun", "Spins.", ["processor"])
    assert again is first
    first.labels("a").inc(2)
    again.labels("a").inc(3)
    assert (
        telemetry.registry.get_sample_value("metricgate_widget_spun_total", {"processor": "a"})
        == 5.0
    )
    histogram = telemetry.histogram("metricgate_widget_seconds", "Time.", ["p"], buckets=(1, 2))
    assert telemetry.histogram("metricgate_widget_seconds", "Time.", ["p"], (1.0, 2.0)) is histogram
    gauge = telemetry.gauge("metricgate_widget_size", "Size.", ["p"])
    assert telemetry.gauge("metricgate_widget_size", "Size.", ["p"]) is gauge


def test_a_core_instrument_is_registered_like_any_other() -> None:
    telemetry = SelfMetrics()
    assert (
        telemetry.counter(
            "metricgate_exporter_sent_points",
            "Data points an exporter's backend accepted (counted on its answer).",
            ["exporter"],
        )
        is telemetry.exporter_sent
    )


@pytest.mark.parametrize(
    ("register", "differs"),
    [
        (
            lambda t: t.counter("metricgate_widget_spun", "Spins.", ["processor", "x"]),
            "['processor', 'x']",
        ),
        (
            lambda t: t.counter("metricgate_widget_spun", "Other help.", ["processor"]),
            "'Other help.'",
        ),
        (lambda t: t.gauge("metricgate_widget_spun", "Spins.", ["processor"]), "a gauge"),
        (lambda t: t.histogram("metricgate_widget_spun", "Spins.", ["processor"]), "a histogram"),
        (lambda t: t.counter("metricgate_widget_spun_total", "Spins.", []), "labels []"),
    ],
)
def test_a_conflicting_registration_names_both(register: object, differs: str) -> None:
    telemetry = SelfMetrics()
    telemetry.counter("metricgate_widget_spun", "Spins.", ["processor"])
    with pytest.raises(TelemetryConflictError) as raised:
        register(telemetry)  # type: ignore[operator]
    message = str(raised.value)
    assert "'metricgate_widget_spun'" in message
    assert "counter with labels ['processor'] and help 'Spins.'" in message
    assert differs in message.split("cannot also be")[1]
    assert telemetry.labelnames()["metricgate_widget_spun"] == ("processor",)


def test_histogram_buckets_must_agree() -> None:
    telemetry = SelfMetrics()
    telemetry.histogram("metricgate_widget_seconds", "Time.", [], buckets=(1, 2))
    with pytest.raises(TelemetryConflictError, match=r"buckets \[1.0, 2.0\]"):
        telemetry.histogram("metricgate_widget_seconds", "Time.", [], buckets=(1, 5))


def test_gauge_readers_are_merged_and_can_stop() -> None:
    telemetry = SelfMetrics()
    gauge = telemetry.gauge("metricgate_widget_size", "Size.", ["processor"])
    stop_a = gauge.observe(lambda: {("a",): 1.0})
    telemetry.gauge("metricgate_widget_size", "Size.", ["processor"]).observe(lambda: {("b",): 2.0})
    page = generate_latest(telemetry.registry).decode()
    assert 'metricgate_widget_size{processor="a"} 1.0' in page
    assert 'metricgate_widget_size{processor="b"} 2.0' in page
    assert page.count("# HELP metricgate_widget_size Size.") == 1
    stop_a()
    stop_a()
    page = generate_latest(telemetry.registry).decode()
    assert 'processor="a"' not in page
    assert 'metricgate_widget_size{processor="b"} 2.0' in page
