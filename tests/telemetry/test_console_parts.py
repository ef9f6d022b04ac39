"""The console's parts on their own: counter rates, exporter health, the last-error handler."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, Counter

from metricgate.telemetry.console.graph import exporter_health, merge_graphs
from metricgate.telemetry.console.last_errors import LastErrors
from metricgate.telemetry.console.rates import CounterSource, RateSampler


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def sampler_with(*counters: Counter, clock: Clock, window: float = 10.0) -> RateSampler:
    return RateSampler(
        [CounterSource("points", counters, ("exporter",))], interval=1.0, window=window, clock=clock
    )


def test_rate_is_the_increase_over_the_window_summed_over_other_labels() -> None:
    registry = CollectorRegistry()
    sent = Counter("sent_points", "", ["exporter", "reason"], registry=registry)
    clock = Clock()
    sampler = sampler_with(sent, clock=clock)
    sampler.sample()
    assert sampler.rate("points", ("a",)) == 0.0  # one sample: no rate yet
    for _ in range(20):
        clock.now += 1.0
        sent.labels("a", "x").inc(30)
        sent.labels("a", "y").inc(20)
        sampler.sample()
    # The ring spans the last 10 s: 50 points a second, whatever happened before.
    assert sampler.span == pytest.approx(10.0)
    assert sampler.rate("points", ("a",)) == pytest.approx(50.0)
    assert sampler.rate("points", ("b",)) == 0.0
    assert sampler.last_rise("points", ("a",)) == clock.now
    assert sampler.last_rise("points", ("b",)) is None


def test_several_families_add_up_and_a_quiet_counter_keeps_its_last_rise() -> None:
    registry = CollectorRegistry()
    retries = Counter("retries", "", ["exporter"], registry=registry)
    failed = Counter("failed", "", ["exporter", "reason"], registry=registry)
    clock = Clock()
    sampler = sampler_with(retries, failed, clock=clock, window=4.0)
    sampler.sample()
    clock.now += 1.0
    retries.labels("a").inc(3)
    failed.labels("a", "permanent").inc(5)
    sampler.sample()
    rose = clock.now
    assert sampler.rate("points", ("a",)) == pytest.approx(8.0)
    for _ in range(6):
        clock.now += 1.0
        sampler.sample()
    assert sampler.rate("points", ("a",)) == 0.0  # out of the window
    assert sampler.last_rise("points", ("a",)) == rose


@pytest.mark.parametrize(
    ("last_sent", "last_trouble", "fill", "expected"),
    [
        (None, None, 0.0, "healthy"),  # nothing happened yet
        (99.0, None, 0.0, "healthy"),
        (99.0, 20.0, 0.0, "healthy"),  # trouble long ago, delivering since
        (None, 95.0, 0.0, "failing"),  # never delivered, retrying
        (90.0, 95.0, 0.0, "failing"),  # nothing delivered since the last trouble
        (99.0, 95.0, 0.0, "recovering"),  # delivering again, trouble under a minute ago
        (99.0, None, 0.6, "recovering"),  # a backlog draining
        (50.0, None, 0.6, "failing"),  # half full and nothing delivered lately: stalled
    ],
)
def test_exporter_health(
    last_sent: float | None, last_trouble: float | None, fill: float, expected: str
) -> None:
    assert exporter_health(100.0, 10.0, last_sent, last_trouble, fill) == expected


@pytest.fixture
def handler() -> Iterator[LastErrors]:
    """A LastErrors handler on the `metricgate` logger, as the console installs it."""
    found = LastErrors(limit=3)
    logger = logging.getLogger("metricgate")
    logger.addHandler(found)
    try:
        yield found
    finally:
        logger.removeHandler(found)


log = logging.getLogger("metricgate.exporters.example")


def test_last_errors_keeps_the_newest_per_kind_and_id_redacted(handler: LastErrors) -> None:
    log.warning("export failed; will retry", extra={"exporter": "otlp", "error": "refused"})
    log.error(
        "export failed; giving up",
        extra={"exporter": "otlp", "error": "401 Authorization: Bearer abc.def-SECRET"},
    )
    log.warning("bad request", extra={"receiver": "otlp", "reason": "malformed"})
    log.info("started", extra={"exporter": "otlp"})  # below WARNING
    log.error("not about a component")
    errors = handler.snapshot()
    assert set(errors) == {("exporter", "otlp"), ("receiver", "otlp")}
    exporter = errors[("exporter", "otlp")]
    assert exporter["level"] == "error" and exporter["count"] == 2
    assert exporter["message"].startswith("export failed; giving up (error=401 Authorization:")
    assert "SECRET" not in exporter["message"]
    assert errors[("receiver", "otlp")]["message"] == "bad request (reason=malformed)"


def test_last_errors_is_bounded_to_the_gateway_components(handler: LastErrors) -> None:
    for index in range(10):
        log.error("boom", extra={"processor": f"p{index}"})
    assert len(handler.snapshot()) == 3
    handler.watch(["p1", "q"])
    assert set(handler.snapshot()) == {("processor", "p1")}
    log.error("boom", extra={"processor": "elsewhere"})
    log.error("late", extra={"component": "q"})
    assert set(handler.snapshot()) == {("processor", "p1"), ("component", "q")}


def _report(rate: float, health: str, error_at: float | None, size: int) -> dict[str, object]:
    error = None if error_at is None else {"time": error_at, "message": f"at {error_at}"}
    node = {"id": "otlp", "kind": "receiver", "points_per_second": rate, "last_error": error}
    edge = {"from": "receiver:otlp", "to": "exporter:prom", "points_per_second": rate}
    return {
        "window_seconds": 9.0 + rate,
        "pipelines": [{"id": "metrics", "receivers": [node], "processors": [], "edges": [edge]}],
        "exporters": {
            "prom": {
                "id": "prom",
                "sent_per_second": rate,
                "last_error": error,
                "health": health,
                "queue": {"size": size, "capacity": 10, "fill": size / 10},
            }
        },
    }


def test_a_set_of_workers_graph_is_their_reports_merged() -> None:
    parts = [
        _report(1.5, "healthy", None, 1),
        _report(2.0, "failing", 5.0, 8),
        _report(0.5, "recovering", 3.0, 0),
    ]
    whole = merge_graphs(parts)
    (pipeline,) = whole["pipelines"]
    assert pipeline["receivers"][0]["points_per_second"] == 4.0
    assert pipeline["edges"][0]["points_per_second"] == 4.0
    assert pipeline["receivers"][0]["last_error"]["time"] == 5.0  # the newest
    prom = whole["exporters"]["prom"]
    assert (prom["sent_per_second"], prom["health"]) == (4.0, "failing")
    assert prom["queue"] == {"size": 9, "capacity": 30, "fill": 0.3}
    assert whole["window_seconds"] == 9.5
    assert parts[0]["exporters"]["prom"]["queue"]["size"] == 1  # the parts are left alone
