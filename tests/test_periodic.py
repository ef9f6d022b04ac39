"""Background duties: they run on their interval, survive a failing run, and stop for good."""

from __future__ import annotations

import asyncio
import logging

import pytest

from metricgate.periodic import Periodic, sweep_interval
from tests.support.poll import wait_until

log = logging.getLogger("tests.periodic")


async def test_a_duty_runs_again_after_a_run_that_failed(caplog: pytest.LogCaptureFixture) -> None:
    runs: list[int] = []

    def duty() -> None:
        runs.append(len(runs))
        if len(runs) == 2:
            raise OSError("disk full")

    periodic = Periodic("test sweep", 0.01, duty, log, {"exporter": "x"})
    with caplog.at_level(logging.ERROR, logger="tests.periodic"):
        periodic.start()
        await wait_until(lambda: len(runs) >= 4)
        await periodic.stop()
    failures = [r for r in caplog.records if "test sweep failed" in r.getMessage()]
    assert len(failures) == 1
    assert failures[0].exc_info is not None and "disk full" in str(failures[0].exc_info[1])
    assert getattr(failures[0], "exporter", None) == "x"


async def test_a_coroutine_duty_is_awaited_and_stop_ends_it_for_good() -> None:
    runs = 0

    async def duty() -> None:
        nonlocal runs
        await asyncio.sleep(0)
        runs += 1

    periodic = Periodic("async duty", 0.01, duty, log)
    periodic.start()
    periodic.start()  # idempotent: still one task
    await wait_until(lambda: runs >= 2)
    await periodic.stop()
    await periodic.stop()
    assert not periodic.running
    stopped_at = runs
    # Five intervals with nothing to wait for: a stopped duty shows itself only by not running.
    await asyncio.sleep(0.05)
    assert runs == stopped_at


async def test_stop_cancels_a_run_in_progress() -> None:
    started = asyncio.Event()

    async def duty() -> None:
        started.set()
        await asyncio.sleep(3600)

    periodic = Periodic("slow duty", 0.0, duty, log)
    periodic.start()
    await asyncio.wait_for(started.wait(), 5)
    await asyncio.wait_for(periodic.stop(), 5)
    assert not periodic.running


@pytest.mark.parametrize(
    ("lifetime", "interval"), [(0.0, 0.02), (0.1, 0.02), (5.0, 0.5), (300.0, 15.0)]
)
def test_sweep_interval_keeps_an_item_at_most_a_tenth_past_its_lifetime(
    lifetime: float, interval: float
) -> None:
    assert sweep_interval(lifetime) == pytest.approx(interval)
