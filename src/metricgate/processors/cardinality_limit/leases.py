"""Series budgets that span metrics, shared by the workers of a `--workers N` set.

Each worker owns whole metrics, so a per-metric budget is exact in each. A `max_series` (the
limiter's, or a tenant's) spans metrics, and so workers: worker 0 keeps the set's account of each
such budget (`Account`), and every worker admits new series against an *allowance* it holds
(`Lease`, the tracker's `allowance`). The allowances never add up to more than the budget:

- a worker about to decide new series it has no room for asks worker 0 first (`Lease.reserve`,
  before the batch is decided); worker 0 grants from the pool (the budget minus every
  allowance), and when the pool is short it first takes back the room other workers hold unused;
- room moves only by being taken from one side before it is added to the other: worker 0 lowers
  the pool before it grants, and a worker lowers its allowance before it says what it holds (a
  worker with a request in flight gives nothing back, so the two never cross). Worker 0's record
  of a worker is therefore never below what the worker holds; each request and each answer to
  a take-back says what the worker holds, and the record becomes exactly that;
- a worker (or a tenant's budget) started again holds nothing and asks like any other: its first
  request says so, which frees what the old one held;
- worker 0 started again asks every worker what it holds before it grants anything.

A worker that needs room while worker 0 cannot be asked (it is starting, or restarting) answers
the batch as an unreachable owner is answered: retryable (HTTP 503, gRPC `UNAVAILABLE`), so
nothing is refused for good and nothing is lost.

So the set admits at most `max_series` series in total, and refuses one for `max_series` only
when the set's admitted series fill the budget. A worker that was refused room does not ask
again for `RETRY_S`, as one process at its budget refuses without asking anyone.

Without a set (one process) nothing here runs: the tracker counts against `max_series` itself.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Final

from metricgate.errors import UnavailableError
from metricgate.processors.cardinality_limit.tracker import SeriesTracker

ASK_TIMEOUT_S: Final = 2.0
"""How long a worker waits for worker 0's grant before it answers the batch retryable."""
RETRY_S: Final = 0.1
"""After worker 0 had no room to give, how long a worker decides with what it has."""
CHUNKS_PER_WORKER: Final = 16
"""A grant brings a worker `max_series / (CHUNKS_PER_WORKER x N)` more room than it needs, so a
stream of new series asks about that often."""

Ask = Callable[[int, str, bytes], Awaitable[bytes]]
"""(worker, topic, payload) -> that worker's answer (the exchange's `ask`; a local call for this
worker)."""


def topics(component_id: str) -> tuple[str, str]:
    """The (reserve, release) topics of one limiter: reserve is served by worker 0, release by
    every worker."""
    return f"cardinality/{component_id}/reserve", f"cardinality/{component_id}/release"


class Lease:
    """One budget's allowance in this worker (see module docstring)."""

    __slots__ = (
        "_ask",
        "_lock",
        "_quiet_until",
        "count",
        "key",
        "max_series",
        "tracker",
    )

    def __init__(
        self, key: str, tracker: SeriesTracker, max_series: int, count: int, ask: Ask
    ) -> None:
        self.key = key
        """The budget's tenant ("" for data without one)."""
        self.tracker = tracker
        self.max_series = max_series
        self.count = count
        self._ask = ask
        self._lock = asyncio.Lock()
        self._quiet_until = 0.0
        tracker.allowance = 0

    def retune(self, max_series: int) -> None:
        """A new `max_series` (hot reload). A lower one: room this worker does not use is given
        up (worker 0's record of it stays higher, so no room is granted twice); it asks again."""
        if max_series < self.max_series:
            tracker = self.tracker
            tracker.allowance = min(tracker.allowance or 0, tracker.admitted_total)
        self.max_series = max_series

    @property
    def headroom(self) -> int:
        tracker = self.tracker
        return (tracker.allowance or 0) - tracker.admitted_total

    async def reserve(self, topic: str, worker: int, need: int) -> None:
        """Make room for `need` more series if the set has it (before they are decided)."""
        if self.headroom >= need or time.monotonic() < self._quiet_until:
            return
        async with self._lock:
            short = need - self.headroom
            if short <= 0:
                return
            want = short + max(1, self.max_series // (CHUNKS_PER_WORKER * self.count))
            payload = json.dumps(
                {
                    "worker": worker,
                    "key": self.key,
                    "want": want,
                    "holds": self.tracker.allowance or 0,
                    "max_series": self.max_series,
                }
            ).encode()
            try:
                answer = await asyncio.wait_for(self._ask(0, topic, payload), ASK_TIMEOUT_S)
                granted = int(json.loads(answer)["granted"])
            except Exception as exc:
                raise UnavailableError(
                    "cardinality_limit: worker 0 could not be asked for room for new series "
                    f"(max_series is shared by the workers): {exc}",
                    1.0,
                ) from None
            self.tracker.allowance = (self.tracker.allowance or 0) + granted
            if granted < short:
                self._quiet_until = time.monotonic() + RETRY_S

    def release(self) -> dict[str, object]:
        """Give back the room this worker does not use (worker 0's call when its pool is
        short): lowered here before it is reported. Nothing while a request is in flight."""
        if self._lock.locked():
            return {"busy": True}
        unused = max(0, self.headroom)
        self.tracker.allowance = (self.tracker.allowance or 0) - unused
        return {"released": unused, "allowance": self.tracker.allowance}


class Account:
    """Worker 0's record of what each worker holds of each budget (see module docstring)."""

    def __init__(self, count: int, ask: Ask, release_topic: str) -> None:
        self.count = count
        self._ask = ask
        self._release_topic = release_topic
        self.held: dict[str, dict[int, int]] = {}
        """Budget key -> worker -> the allowance it holds, by this record."""
        self._learned = count == 1
        self._learning = asyncio.Lock()

    async def reserve(self, request: dict[str, object]) -> dict[str, int]:
        """Grant up to `want` from the pool, taking back unused room first if it is short."""
        worker, key = int(str(request["worker"])), str(request["key"])
        want, holds = int(str(request["want"])), int(str(request["holds"]))
        budget = int(str(request["max_series"]))
        if not self._learned:
            await self._learn()  # raises while a worker cannot say: nothing is granted
        held = self.held.setdefault(key, {})
        held[worker] = holds  # exact: nothing moves while its request is open
        if self._pool(key, budget) < want:
            await self._take_back(key, worker)
        granted = max(0, min(want, self._pool(key, budget)))
        held[worker] = holds + granted
        return {"granted": granted}

    def _pool(self, key: str, budget: int) -> int:
        """The budget minus what every worker holds, by this record."""
        return budget - sum(self.held.get(key, {}).values())

    async def _take_back(self, key: str, asking: int) -> None:
        payload = json.dumps({"key": key}).encode()
        others = [w for w in range(self.count) if w != asking]
        answers = await asyncio.gather(
            *(self._ask(w, self._release_topic, payload) for w in others), return_exceptions=True
        )
        held = self.held.setdefault(key, {})
        for worker, answer in zip(others, answers, strict=True):
            if isinstance(answer, BaseException):
                continue  # it keeps what it had in this account (never counted as free)
            found = json.loads(answer)
            if found.get("absent"):
                held.pop(worker, None)  # no such budget there (a new one starts with nothing)
            elif not found.get("busy"):
                held[worker] = int(found["allowance"])

    async def _learn(self) -> None:
        """Worker 0 started (again): what every worker holds, before anything is granted (once:
        a second look would forget grants made since the first)."""
        async with self._learning:
            if not self._learned:
                await self._learn_once()

    async def _learn_once(self) -> None:
        payload = json.dumps({"key": None}).encode()
        answers = await asyncio.gather(
            *(self._ask(w, self._release_topic, payload) for w in range(self.count))
        )
        for worker, answer in enumerate(answers):
            for key, allowance in json.loads(answer).items():
                self.held.setdefault(key, {})[worker] = int(allowance)
        self._learned = True
