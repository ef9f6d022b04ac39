"""The one backoff and `Retry-After` reading every sender uses."""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from metricgate.pipeline.retry import (
    Backoff,
    RetrySettings,
    points_per_request,
    points_with_output,
    retry_after_seconds,
)


def test_retry_after_forms() -> None:
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds(" 2.5 ") == 2.5
    assert retry_after_seconds(None) == 0.0
    assert retry_after_seconds("garbage") == 0.0
    assert retry_after_seconds("soon") == 0.0
    assert retry_after_seconds("-4") == 0.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412500.0) == 0.0


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@given(
    initial=st.floats(0.001, 10),
    multiplier=st.floats(1, 3),
    jitter=st.floats(0, 1),
    max_interval=st.floats(0.001, 60),
    hints=st.lists(st.floats(0, 100), min_size=1, max_size=30),
)
def test_waits_grow_to_the_cap_and_honour_the_backend(
    initial: float, multiplier: float, jitter: float, max_interval: float, hints: list[float]
) -> None:
    settings = RetrySettings(
        initial_interval=initial,
        max_interval=max_interval,
        multiplier=multiplier,
        randomization_factor=jitter,
        max_elapsed_time=0,
    )
    backoff = Backoff(settings)
    interval = initial
    for hint in hints:
        wait = backoff.next_wait(hint)
        assert wait is not None, "max_elapsed_time 0 retries forever"
        assert wait >= hint
        assert wait >= min(interval * (1 - jitter), hint) - 1e-9
        assert wait <= max(interval * (1 + jitter), hint) + 1e-9
        interval = min(interval * multiplier, max_interval)


def test_gives_up_once_the_next_wait_would_pass_max_elapsed_time() -> None:
    clock = Clock()
    settings = RetrySettings(
        initial_interval=1, multiplier=1, randomization_factor=0, max_elapsed_time=3.5
    )
    backoff = Backoff(settings, clock)
    waits = []
    while (wait := backoff.next_wait()) is not None:
        waits.append(wait)
        clock.now += wait
    assert waits == [1.0, 1.0, 1.0]
    assert Backoff(RetrySettings(enabled=False), clock).next_wait() is None
    # A backend asking for longer than what is left ends the retries at once.
    assert Backoff(settings, clock).next_wait(retry_after=10) is None


@given(
    outputs_per_point=st.lists(st.integers(0, 5), max_size=60),
    cuts=st.lists(st.integers(0, 300), max_size=8),
)
def test_points_per_request_counts_each_point_once_with_its_first_output(
    outputs_per_point: list[int], cuts: list[int]
) -> None:
    followers: list[int] = []
    firsts: list[int] = []
    total = 0
    for count in outputs_per_point:
        if count:
            firsts.append(total)
            followers.extend(range(total + 1, total + count))
        total += count
    bounds = sorted({0, total, *(c for c in cuts if c <= total)})
    spans = list(pairwise(bounds))
    counted = points_per_request(followers, spans)
    assert counted == [sum(start <= f < end for f in firsts) for start, end in spans]
    assert sum(counted) == points_with_output(total, followers) == len(firsts)
