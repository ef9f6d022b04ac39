"""Retrying, in one place: the `retry_on_failure` settings, the backoff and `Retry-After`.

Everything that waits before sending again uses this module: the sending core (`queue.py`,
`lanes.py`) between attempts, and exporters that read a backend's `Retry-After` (remote-write,
otlp over HTTP, datadog) to put it on the `RetryableError` they raise. `Unsent` is the form a
remainder takes when an exporter already mapped it (see `PartialExportError`): `send_requests`
sends one batch's requests and raises with what is still owed, and `points_per_request` tells
such an exporter how many data points each of its requests carries.

The wait before attempt n+1 is `interval * uniform(1 - jitter, 1 + jitter)` with `interval`
starting at `initial_interval` and multiplied by `multiplier` after each attempt up to
`max_interval`; a longer `Retry-After` (or gRPC RetryInfo) from the backend wins. Once the next
wait would end after `max_elapsed_time` since the first attempt, the delivery gives up (0: never).

Invariant: a backoff never waits less than the backend asked for, and never gives up before
`max_elapsed_time` unless retrying is disabled.
"""

from __future__ import annotations

import asyncio
import random
import time
from bisect import bisect_left
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from metricgate.config.types import Duration
from metricgate.errors import PartialExportError, PermanentError, RetryableError
from metricgate.model import Batch

R = TypeVar("R")


class RetrySettings(BaseModel):
    """`retry_on_failure`: backoff between attempts after a retryable error."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    initial_interval: Duration = 5.0
    max_interval: Duration = 30.0
    max_elapsed_time: Duration = 300.0
    """Give up after this long; 0 retries forever."""
    multiplier: float = Field(default=1.5, ge=1.0)
    randomization_factor: float = Field(default=0.5, ge=0.0, le=1.0)


class Backoff:
    """The waits of one delivery: call `next_wait` after each failed attempt."""

    __slots__ = ("_clock", "interval", "settings", "started")

    def __init__(
        self, settings: RetrySettings, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.settings = settings
        self._clock = clock
        self.started = clock()
        self.interval = settings.initial_interval

    def next_wait(self, retry_after: float = 0.0) -> float | None:
        """Seconds to wait before the next attempt (at least `retry_after`), None to give up."""
        settings = self.settings
        if not settings.enabled:
            return None
        jitter = settings.randomization_factor
        wait = max(self.interval * random.uniform(1 - jitter, 1 + jitter), retry_after)
        limit = settings.max_elapsed_time
        if limit and self._clock() - self.started + wait > limit:
            return None
        self.interval = min(self.interval * settings.multiplier, settings.max_interval)
        return wait


async def sleep_unless(event: asyncio.Event, seconds: float) -> None:
    """Sleep `seconds`, or less if `event` is set meanwhile (shutdown cutting a backoff short).

    Not `asyncio.wait_for(event.wait(), seconds)`: on Python 3.11 that swallows a cancellation
    arriving in the same loop iteration as the event, and a worker cancelled by shutdown then
    runs on forever.
    """
    if event.is_set():
        return
    waiter = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait((waiter,), timeout=seconds)
    finally:
        waiter.cancel()


def retry_after_seconds(header: str | None, now: float | None = None) -> float:
    """`Retry-After` (or `X-RateLimit-Reset`) as seconds from now: delta-seconds or an HTTP
    date; 0 when absent or unreadable."""
    if not header:
        return 0.0
    text = header.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text).timestamp()
    except (TypeError, ValueError, IndexError):
        return 0.0
    return max(0.0, when - (time.time() if now is None else now))


@dataclass(slots=True)
class Unsent(Batch, Generic[R]):
    """A remainder an exporter already mapped: the requests it still owes, not their points.

    An exporter whose mapping advances state (cumulative -> delta) must not map the same points
    twice, so on a partial failure it raises `PartialExportError` with an `Unsent` holding its
    unsent `requests` and the number of data points they carry; the core hands it back to the
    same exporter's `export()`, which sends those requests as they are. `metrics` stays empty:
    nothing but `owner` can read it.
    """

    owner: object = None
    requests: list[R] = field(default_factory=list)
    points: int = 0

    def point_count(self) -> int:
        return self.points

    def __bool__(self) -> bool:
        return bool(self.requests)

    def owned_by(self, exporter: object) -> bool:
        return self.owner is exporter


def points_with_output(outputs: int, followers: list[int]) -> int:
    """Data points behind `outputs` outputs (series, data), given a mapper's `followers`: the
    indexes, in increasing order, of the outputs that continue a point's first one."""
    return outputs - len(followers)


def points_per_request(followers: list[int], spans: list[tuple[int, int]]) -> list[int]:
    """Data points each request carries, given the output range [start, end) each request was
    cut from (`spans`, contiguous) and the mapper's `followers`: a point counts with the request
    holding its first output."""
    return [
        (end - start) - (bisect_left(followers, end) - bisect_left(followers, start))
        for start, end in spans
    ]


async def send_requests(
    owner: object,
    requests: list[tuple[R, int]],
    send: Callable[[R], Awaitable[object]],
    what: str,
    *,
    in_order: bool = False,
) -> int:
    """Send one batch's (request, points carried) pairs, each once; returns the points delivered.

    Some failed retryably: raises `PartialExportError` whose remainder is an `Unsent` of the
    requests still owed (retried as they are), after the longest `Retry-After` asked for. Some
    were refused for good and none is owed: raises `PermanentError`. `in_order`: stop at the
    first retryable failure and owe everything from there (for backends that need time order).
    """
    delivered = refused = 0
    retry: RetryableError | None = None
    permanent: PermanentError | None = None
    owed: list[tuple[R, int]] = []
    for request, points in requests:
        if retry is not None and in_order:
            owed.append((request, points))
            continue
        try:
            await send(request)
        except RetryableError as exc:
            owed.append((request, points))
            retry = exc if retry is None or exc.retry_after > retry.retry_after else retry
            continue
        except PermanentError as exc:
            refused += points
            permanent = permanent or exc
            continue
        delivered += points
    if retry is not None:
        remaining = Unsent(owner=owner, requests=owed, points=sum(p for _, p in owed))
        raise PartialExportError(
            f"{len(owed)} of {len(requests)} {what} not accepted: {retry}",
            remaining,
            delivered=delivered,
            refused=refused,
            retry_after=retry.retry_after,
        )
    if permanent is not None:
        raise PermanentError(
            f"{what}: refused for good: {permanent}", refused=refused, delivered=delivered
        )
    return delivered
