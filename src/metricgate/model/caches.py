"""Bounded per-series caches, and the one list the memory limiter empties under memory pressure.

Hot paths remember per-series work (decoded series, interned objects, translations, relabel
verdicts) in plain dicts, so a hit is one dictionary lookup and nothing else: no LRU order, no
counters. Each such cache has a bound in entries; when an insert finds it full, it forgets every
entry at once and refills from the traffic (generation-based clearing). `BoundedTable` is that
dict with its bound; caches shaped otherwise (a decoder's per-metric tables counted together)
keep their own count and clear the same way.

Every cache registers here (`register`). A series is cached whether or not the pipeline later
admits it, so a flood of new series fills the caches up to their bounds; the memory limiter then
calls `release_caches` to empty them all before it refuses data, so memory held for series that
will not come back is given back instead of keeping the process over its limit.

Invariant: releasing a cache changes what a later call costs, never what it returns. Everything
registered here must give the same answers after `release()` as before (objects handed out earlier
stay valid: the model compares by value), and must be released only between two requests (all of
them run on the event loop, so any code outside a cache's own methods is between two requests).
The one registered piece of state, the cardinality limiter's refused series, documents its own
weaker promise: a forgotten refused series is decided again, as one past its bound always was.
"""

from __future__ import annotations

import weakref
from typing import Generic, Protocol, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Releasable(Protocol):
    """A cache the memory limiter may empty: `release()` forgets everything, `len()` counts it."""

    def release(self) -> int:
        """Forget every entry; return how many there were."""
        ...

    def __len__(self) -> int: ...


_REGISTERED: weakref.WeakSet[Releasable] = weakref.WeakSet()

_R = TypeVar("_R", bound=Releasable)


def register(cache: _R) -> _R:
    """Let `release_caches` empty `cache` (held weakly: registering keeps nothing alive)."""
    _REGISTERED.add(cache)
    return cache


def release_caches() -> int:
    """Empty every registered cache; return the number of entries forgotten."""
    return sum(cache.release() for cache in list(_REGISTERED))


def cached_entries() -> int:
    """Entries held by every registered cache right now."""
    return sum(len(cache) for cache in list(_REGISTERED))


class BoundedTable(Generic[K, V]):
    """A dict that forgets everything when an insert finds `max_entries` entries in it.

    Read it through `entries` (hot loops bind `table.entries.get` once: clearing keeps the same
    dict object, so a bound method stays valid); write through `put`.
    """

    __slots__ = ("__weakref__", "entries", "max_entries")

    def __init__(self, max_entries: int) -> None:
        if max_entries < 1:
            raise ValueError(f"expected max_entries >= 1, got {max_entries}")
        self.entries: dict[K, V] = {}
        self.max_entries = max_entries
        register(self)

    def put(self, key: K, value: V) -> V:
        """Remember `value` under `key` and return it."""
        entries = self.entries
        if len(entries) >= self.max_entries:
            entries.clear()
        entries[key] = value
        return value

    def release(self) -> int:
        count = len(self.entries)
        self.entries.clear()
        return count

    def __len__(self) -> int:
        return len(self.entries)
