"""Known runs: the series of one scrape or export, remembered so their next points skip lookups.

A scrape of a target (an export of an SDK process) brings the same series objects in the same
order every interval, as a run of one timestamp inside its metric's group. Finding each series'
state in the encoder's table costs a Python `__hash__` call and several cache misses per sample
(about 0.3 us with a few hundred thousand series, more than the rest of a steady sample's
encoding). `RunMemo` keeps, per run of at least `MIN_RUN` points (keyed by the identity of its
first series), the series, their states and their label heads. When the same objects come again
in the same order (one pointer comparison each, no object touched), the heads are taken as they
are and the run is marked updated once instead of each of its states.

Invariants:
- a memo is used only while none of its states has left the encoder's table: every removal is
  recorded (`forget`), and a memo checked before the last removal is checked against the recorded
  states (by identity) before it is used again;
- a memo keeps its series alive, so the identity it is keyed by cannot be taken by another object;
- `fold` writes each memo's `updated` into its states; the encoder calls it before it reads
  `SeriesState.updated` (expiry), so memoised series expire exactly as the others;
- memos and recorded removals are bounded (`max_runs`, `max_removed`): past either, every memo's
  time is folded and all are dropped, which costs the next interval its lookups and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import islice
from operator import attrgetter, is_, itemgetter
from typing import Final

from metricgate.exporters.prometheus_remote_write.outputs import SeriesState
from metricgate.model import Series

MIN_RUN: Final = 4
"""Shorter runs (series with timestamps of their own) are looked up point by point."""
_head = attrgetter("head")


class KnownRun:
    """One run's series, their states and label heads, and how they spread over shards."""

    __slots__ = ("_split", "checked", "heads", "series", "states", "updated")

    def __init__(
        self,
        series: list[Series],
        states: list[SeriesState],
        heads: list[bytes],
        checked: int,
        updated: float,
    ) -> None:
        self.series = series
        self.states = states
        self.heads = heads
        self.checked = checked
        """The removal count this memo was last known valid at."""
        self.updated = updated
        self._split: tuple[int, list[tuple[int, Pick]]] | None = None

    def split(self, shards: int) -> list[tuple[int, Pick]]:
        """(shard, pick) for each shard that holds some of the run: `pick(seq)` takes that
        shard's positions of a sequence laid out as the run, in run order."""
        cached = self._split
        if cached is not None and cached[0] == shards:
            return cached[1]
        positions: dict[int, list[int]] = {}
        for position, state in enumerate(self.states):
            positions.setdefault(state.key % shards, []).append(position)
        out = [(shard, _picker(found)) for shard, found in positions.items()]
        self._split = (shards, out)
        return out


Pick = Callable[[Sequence[bytes]], Sequence[bytes]]


def _picker(positions: list[int]) -> Pick:
    if len(positions) == 1:
        only = positions[0]
        return lambda items: (items[only],)
    return itemgetter(*positions)


class RunMemo:
    """The encoder's remembered runs of known gauge and counter series (see the module doc)."""

    def __init__(
        self,
        get: Callable[[Series], SeriesState | None],
        max_runs: int = 1 << 17,
        max_removed: int = 1 << 16,
    ) -> None:
        self._get = get
        self.max_runs = max_runs
        self.max_removed = max_removed
        self._runs: dict[int, KnownRun] = {}
        self._removed: set[SeriesState] = set()
        self._removals = 0

    def __len__(self) -> int:
        return len(self._runs)

    def run(
        self,
        series: list[Series],
        start: int,
        stop: int,
        now: float,
        create: Callable[[Series], SeriesState | None] | None = None,
    ) -> KnownRun | None:
        """The states and heads of `series[start:stop]` (one run), marked updated at `now`;
        a series without a state gets one from `create`. None if one of them has or gets no
        state, or has no single head (nothing is marked then; states created stay)."""
        size = stop - start
        key = id(series[start])
        run = self._runs.get(key) if size >= MIN_RUN else None
        if (
            run is not None
            and len(run.series) == size
            and all(map(is_, islice(series, start, stop), run.series))
            and self._valid(run)
        ):
            run.updated = now
            return run
        part = series[start:stop]
        found = list(map(self._get, part))
        if None in found:
            if create is None:
                return None
            for index, state in enumerate(found):
                if state is None:
                    state = found[index] = create(part[index])
                    if state is None:
                        return None
        states: list[SeriesState] = found  # type: ignore[assignment]
        heads = list(map(_head, states))
        if b"" in heads:
            return None
        for state in states:
            state.updated = now
        fresh = KnownRun(part, states, heads, self._removals, now)
        if size >= MIN_RUN:
            if run is not None:
                self._fold(run)
            elif len(self._runs) >= self.max_runs:
                self.clear()
            self._runs[key] = fresh
        return fresh

    def _valid(self, run: KnownRun) -> bool:
        if run.checked == self._removals:
            return True
        if not self._removed.isdisjoint(run.states):
            return False
        run.checked = self._removals
        return True

    def forget(self, state: SeriesState) -> None:
        """`state` left the encoder's table: no memo holding it may be used any more."""
        if not self._runs:
            return
        if len(self._removed) >= self.max_removed:
            self.clear()
            return
        self._removed.add(state)
        self._removals += 1

    def fold(self) -> None:
        """Write each memo's `updated` into its states; drop the memos that lost a state."""
        for key, run in list(self._runs.items()):
            self._fold(run)
            if not self._valid(run):  # a kept memo is now checked at the current count
                del self._runs[key]
        self._removed.clear()

    def clear(self) -> None:
        """Fold every memo's time into its states and drop all memos."""
        for run in self._runs.values():
            self._fold(run)
        self._runs.clear()
        self._removed.clear()

    @staticmethod
    def _fold(run: KnownRun) -> None:
        updated = run.updated
        for state in run.states:
            if state.updated < updated:
                state.updated = updated
