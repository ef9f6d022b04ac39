"""Label plans: how every series of one attribute shape becomes its Prometheus labels.

The labels of an OTLP series follow from its attribute *keys* (their label names, renames to
`exported_*`, which labels of the resource and scope fill in around them, the sorted order) and
only then from its values. A plan records that work once per shape (the attribute keys, within one
(resource, scope) base and family type), so a new series of a known shape costs its values' texts
and one tuple pick instead of the translation label by label.

A plan is made by running the translator's own label rule once with a stand-in value per
attribute (a fresh, non-empty string) and reading where each stand-in and each base value ended
up. A shape is planned only on its second series (one series of a shape is cheaper translated
directly) and never when two attributes map to one label name (their values are joined, which a
pick cannot do); a series with an empty value text takes the direct path too, as its label is
left out.

Invariant: for every series a plan serves, the label names and values are exactly those the
direct translation gives (tested against it for random shapes and values).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from operator import itemgetter
from typing import Any, Final

from metricgate.model import AttributeValue
from metricgate.model.caches import BoundedTable

MAX_PLANS: Final = 10_000
"""Shapes one translator keeps a plan for (a shape seen once holds a marker); past it they all
start over."""

LabelsOf = Callable[[Iterable[tuple[str, AttributeValue]], Any, Any], Mapping[str, str]]
"""The translator's label rule: (attributes, base, family type) -> labels by name."""
Pick = Callable[[list[str]], tuple[str, ...]]
Share = Callable[[tuple[str, ...]], tuple[str, ...]]


class LabelPlan:
    """The label names of one shape and how its values are picked from a series' value texts
    (followed by the plan's constants: labels that come from the base)."""

    __slots__ = ("base", "constants", "names", "pick")

    def __init__(
        self, base: object, names: tuple[str, ...], pick: Pick, constants: list[str]
    ) -> None:
        self.base: Final = base
        """Held so that its `id`, part of the plan's key, stays its own while the plan lives."""
        self.names: Final = names
        self.pick: Final = pick
        self.constants: Final = constants

    def values(self, texts: list[str]) -> tuple[str, ...]:
        """The label values, in `names` order, of a series whose attribute values read `texts`
        (non-empty; `texts` is extended)."""
        texts += self.constants
        return self.pick(texts)


_SEEN: Final = object()
"""A shape seen once: the next series of it gets a plan."""


class LabelPlans:
    """One translator's plans, by (base identity, family type, attribute keys)."""

    __slots__ = ("_plans",)

    def __init__(self) -> None:
        self._plans: BoundedTable[tuple[int, object, tuple[str, ...]], object] = BoundedTable(
            MAX_PLANS
        )

    def find(
        self,
        base: object,
        kind: object,
        keys: tuple[str, ...],
        labels_of: LabelsOf,
        share: Share,
    ) -> LabelPlan | None:
        """The plan for `keys` under `base` and `kind`, or None (translate directly): not seen
        before, or not plannable. `share` gives the one tuple of equal label names."""
        key = (id(base), kind, keys)
        found = self._plans.entries.get(key)
        if found is None:
            self._plans.put(key, _SEEN)
            return None
        if found is _SEEN:
            found = self._plans.put(key, make_plan(base, kind, keys, labels_of, share))
        return found if isinstance(found, LabelPlan) else None

    def __len__(self) -> int:
        return len(self._plans.entries)


def make_plan(
    base: object, kind: object, keys: tuple[str, ...], labels_of: LabelsOf, share: Share
) -> LabelPlan | None:
    """The plan for attribute `keys`, or None when two of them share a label name."""
    stand_ins = [f"\x00{i}" for i in range(len(keys))]
    where = {id(value): i for i, value in enumerate(stand_ins)}
    labels = labels_of(zip(keys, stand_ins, strict=True), base, kind)
    names = share(tuple(sorted(name for name, value in labels.items() if value)))
    constants: list[str] = []
    order = []
    for name in names:
        value = labels[name]
        index = where.get(id(value))
        if index is None:
            if "\x00" in value:
                return None  # values joined: two attributes map to this label
            index = len(keys) + len(constants)
            constants.append(value)
        order.append(index)
    if len(order) == 1:
        only = order[0]
        return LabelPlan(base, names, lambda texts: (texts[only],), constants)
    if not order:
        return LabelPlan(base, names, lambda texts: (), constants)
    return LabelPlan(base, names, itemgetter(*order), constants)
