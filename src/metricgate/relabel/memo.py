"""Relabel outcomes remembered by what the rules read, so most new series skip the rules.

A rule set's outcome for a series depends only on the values of the labels its rules read (source
labels, a `keepequal` target, the labels of `if:` matchers, `__name__` for `keep_metrics`) and on
the series' label names (which `labeldrop` and `labelkeep` match). The outcome for one series,
written as an edit or a drop, is therefore the outcome for every series that agrees with it on
those: a new series of a known shape costs some dictionary work instead of every rule. An edit
names the labels the rules set, with their values, even one set to the value it had (another
series of the key may have had another value there), and, as the key holds the label names, where
each output label comes from, so applying it is a pick by position. Rule sets with `labelmap` or
`labelmap_all` (which copy values of labels they do not name) are not memoised.

Invariant: an edit is stored under the key of the series it was computed from, and the key holds
everything the rules read, so applying it gives exactly what running the rules gives.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from operator import itemgetter
from typing import TYPE_CHECKING, Final

from metricgate.model.caches import BoundedTable

if TYPE_CHECKING:
    from metricgate.relabel.rules import Drop, LabelPairs, Rule

Edit = tuple[str, "Pick | None", "LabelPairs"]
"""The new `__name__` ("": unchanged), how the output labels are picked from the input's labels
followed by the added ones (None: the input's labels as they are), and the added (name, value)
pairs."""
Pick = Callable[["LabelPairs"], "LabelPairs"]
Relabeled = tuple[str, "LabelPairs", tuple[str, ...]]
"""A kept series: its `__name__`, its other labels (sorted, non-empty values) and their names."""
Remembered = tuple[Edit, tuple[str, ...]]
"""An edit and the label names it leaves (the same for every series of its key: the key holds the
series' label names)."""

MAX_ENTRIES: Final = 50_000
_MEMOISABLE: Final = frozenset(
    {
        "replace",
        "keep",
        "drop",
        "keep_metrics",
        "drop_metrics",
        "keepequal",
        "dropequal",
        "keep_if_equal",
        "drop_if_equal",
        "hashmod",
        "lowercase",
        "uppercase",
        "labeldrop",
        "labelkeep",
        "replace_all",
    }
)


def read_labels(rules: Sequence[Rule]) -> tuple[str, ...] | None:
    """The labels whose values `rules` read, or None when their outcome is not memoisable."""
    reads: set[str] = set()
    for rule in rules:
        if rule.action not in _MEMOISABLE:
            return None
        reads.update(rule.source_labels)
        if rule.action in ("keepequal", "dropequal"):
            reads.add(rule.target_label)
        if rule.selector is not None:
            reads.update(m.label for matchers in rule.selector.alternatives for m in matchers)
    return tuple(sorted(reads))


class OutcomeMemo:
    """Edits by key (see module docstring); bounded at `MAX_ENTRIES` shapes and edits, each
    table forgetting everything when full or when the memory limiter releases caches."""

    __slots__ = ("_edits", "_positions", "reads", "with_name")

    def __init__(self, reads: tuple[str, ...]) -> None:
        self.reads = tuple(name for name in reads if name != "__name__")
        self.with_name = "__name__" in reads
        self._positions: BoundedTable[tuple[str, ...], tuple[int, ...]] = BoundedTable(MAX_ENTRIES)
        """Label names of a series -> where each read label is among them (-1: absent)."""
        self._edits: BoundedTable[tuple[object, ...], Remembered | Drop] = BoundedTable(MAX_ENTRIES)

    def key(self, name: str, names: tuple[str, ...], pairs: LabelPairs) -> tuple[object, ...]:
        """`names` are the names of `pairs` (a tuple the caller keeps, so cheap to hash)."""
        positions = self._positions.entries.get(names)
        if positions is None:
            positions = self._positions.put(
                names, tuple(names.index(label) for label in self.reads if label in names)
            )
        return (names, name if self.with_name else "", *[pairs[i][1] for i in positions])

    def get(self, key: tuple[object, ...]) -> Remembered | Drop | None:
        return self._edits.entries.get(key)

    def remember(
        self,
        key: tuple[object, ...],
        name: str,
        pairs: LabelPairs,
        after: Relabeled | Drop,
        written: Collection[str] = (),
    ) -> None:
        """Remember the outcome for `key`, computed from `name` and `pairs`. `written`: the
        label names the rules set (a label set to the value it had is still the rules' value,
        not the input's: another series of the key may have had another value there)."""
        if not isinstance(after, tuple):
            self._edits.put(key, after)
            return
        new_name, kept, names = after
        if new_name == name and "__name__" not in written:
            new_name = ""
        added = tuple(pair for pair in kept if pair[0] in written or pair not in pairs)
        pick: Pick | None = None
        if added or len(kept) != len(pairs):
            # The key holds the input's label names, so where each output label comes from is
            # the same for every series of the key.
            at = {label: i for i, (label, _) in enumerate(pairs)}
            at.update((label, len(pairs) + i) for i, (label, _) in enumerate(added))
            pick = _picker([at[label] for label, _ in kept])
        self._edits.put(key, ((new_name, pick, added), names))


def _picker(order: list[int]) -> Pick:
    """The labels at `order`, as a tuple."""
    if len(order) > 1:
        return itemgetter(*order)
    if order:
        only = order[0]
        return lambda labels: (labels[only],)
    return lambda labels: ()


def apply_edit(edit: Edit, name: str, pairs: LabelPairs) -> tuple[str, LabelPairs]:
    """The relabeled series whose `__name__` is `name` and other labels `pairs` (sorted)."""
    new_name, pick, added = edit
    if pick is not None:
        pairs = pick(pairs + added)
    return (new_name or name, pairs)
