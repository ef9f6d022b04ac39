"""Known runs: the series of one scrape or export, remembered so their next points skip lookups.

A scrape of a target (an export of an SDK process) brings the same series objects in the same
order every interval, as a run of one timestamp inside its metric's group. Finding each series'
state in the encoder's table costs a Python `__hash__` call and several cache misses per sample
(about 0.3 us with a few hundred thousand series, more than the rest of a steady sample's
encoding). `RunMemo` keeps, per run of at least `MIN_RUN` points (keyed by the identity of its
first series), the series, their states and their label heads. When the same objects come again
in the same order (one pointer comparison each, no object touched), the heads are taken as they
are and the run is marked updated once instead of each of its states.

Under churn (pods restarting, new agent runs) a run comes back with a few of its series replaced
by new ones at the same places. Such a run is patched: only the replaced places are looked up
(or created), the rest is taken from the memo by position, and its split over shards is redone
from the memo's shard numbers without touching the states again.

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
from itertools import compress, count, islice
from operator import attrgetter, is_, is_not, itemgetter
from typing import Final

from metricgate.exporters.prometheus_remote_write.outputs import SeriesState
from metricgate.model import Series

MIN_RUN: Final = 4
"""Shorter runs (series with timestamps of their own) are looked up point by point."""
_head = attrgetter("head")


class KnownRun:
    """One run's series, their states and label heads, and how they spread over shards."""

    __slots__ = ("_shards", "_split", "checked", "heads", "series", "states", "updated")

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
        self._shards: list[int] | None = None
        """Each position's shard, for the shard count of `_split`."""

    def split(self, shards: int) -> list[tuple[int, Pick]]:
        """(shard, pick) for each shard that holds some of the run: `pick(seq)` takes that
        shard's positions of a sequence laid out as the run, in run order."""
        cached = self._split
        if cached is not None and cached[0] == shards:
            return cached[1]
        self._shards = [state.key % shards for state in self.states]
        return self._split_by(shards)

    def patched_from(self, old: KnownRun, changed: list[int]) -> None:
        """Take `old`'s split, redone for the `changed` positions (this run is `old` with those
        replaced), so the states that stayed are not read again."""
        if old._split is None or old._shards is None:
            return
        shards = old._split[0]
        spread = old._shards.copy()
        for position in changed:
            spread[position] = self.states[position].key % shards
        self._shards = spread
        if spread == old._shards:
            self._split = old._split
        else:
            self._split_by(shards)

    def _split_by(self, shards: int) -> list[tuple[int, Pick]]:
        assert self._shards is not None
        positions: dict[int, list[int]] = {}
        for position, shard in enumerate(self._shards):
            positions.setdefault(shard, []).append(position)
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
        if run is not None and len(run.series) == size and self._valid(run):
            return self._patch(key, run, part, now, create)
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

    def _patch(
        self,
        key: int,
        run: KnownRun,
        part: list[Series],
        now: float,
        create: Callable[[Series], SeriesState | None] | None,
    ) -> KnownRun | None:
        """`run` with the series at some places replaced (`part`): only those are looked up or
        created; the memo becomes the patched run. None as `run()` says (the memo stays)."""
        changed = list(compress(count(), map(is_not, part, run.series)))
        states, heads = run.states.copy(), run.heads.copy()
        for position in changed:
            one = part[position]
            state = self._get(one)
            if state is None:
                state = create(one) if create is not None else None
                if state is None:
                    return None
            if not state.head:
                return None
            states[position], heads[position] = state, state.head
        for position in changed:  # the series that left the run keep the run's last time
            gone = run.states[position]
            if gone.updated < run.updated:
                gone.updated = run.updated
        fresh = KnownRun(part, states, heads, self._removals, now)  # its time is folded later
        fresh.patched_from(run, changed)
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
