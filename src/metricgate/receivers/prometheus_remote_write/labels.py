"""Remote-write label sets -> the metric name and the series attributes, validated once per shape.

A valid label set has unique label names, a `__name__` that is a valid metric name, and other
names that are valid label names; empty values are dropped (Prometheus treats `k=""` as no label).
The spec asks senders to sort labels by name, and Prometheus and VictoriaMetrics sort what arrives
unsorted (the npm `prometheus-remote-write` client sends them in object order), so by default so do
we; a `strict` receiver refuses such a series instead.

The label names of a series, as sent (its *shape*), are checked once per distinct shape: the
result records where `__name__` is and, for unsorted names, the order that sorts them, so a new
series of a known shape costs a lookup and a list build, and its label names come with it (one
tuple per shape, handed on as `Series.label_names`). An invalid shape takes the detailed check,
which names the first problem.

Invariant: `split` gives the same answer for every order of the same labels (unless `strict`), and
attributes always come out sorted by name, as the model requires.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Final

from metricgate.model.caches import BoundedTable
from metricgate.receivers.prometheus_remote_write.result import InvalidSeriesError, describe
from metricgate.translate.names import is_label_name, is_metric_name

MAX_SHAPES: Final = 200_000

_Shape = tuple[int, tuple[int, ...] | None, tuple[str, ...]]
_INVALID: Final[_Shape] = (-1, None, ())
Split = tuple[str, tuple[tuple[str, str], ...], tuple[str, ...] | None]
"""The metric name, the other labels (sorted, non-empty) and their names when known."""


def _label_name(pair: tuple[str, str]) -> str:
    return pair[0]


class LabelSets:
    """Checks and orders one receiver's label sets (see module docstring)."""

    __slots__ = ("_shapes", "strict")

    def __init__(self, strict: bool = False) -> None:
        self.strict = strict
        """Refuse series whose labels are not sorted by name, instead of sorting them."""
        self._shapes: BoundedTable[tuple[str, ...], _Shape] = BoundedTable(MAX_SHAPES)
        """Label names of series, as sent -> how to read them (see `_shape`)."""

    def split(self, pairs: list[tuple[str, str]]) -> Split:
        """The metric name, the other non-empty labels, sorted, and their names (None when a
        label was empty) of a valid label set; else `InvalidSeriesError` saying what is wrong.
        `pairs` may be reordered."""
        names = tuple([pair[0] for pair in pairs])
        at, order, label_names = self._shapes.entries.get(names) or self._shape(names)
        if at >= 0:
            if order is not None:
                pairs = [pairs[i] for i in order]
            name = pairs[at][1]
            if is_metric_name(name):
                del pairs[at]
                # Pairs come from the decoder's label cache: share them rather than build new ones.
                attributes = tuple([pair for pair in pairs if pair[1]])
                return name, attributes, label_names if len(attributes) == len(pairs) else None
        name, attributes = self._checked(pairs)
        return name, attributes, None

    def _shape(self, names: tuple[str, ...]) -> _Shape:
        """Where `__name__` is once `names` are sorted, and the order that sorts them (None when
        they are sorted already); where is -1 when they are not unique and valid, or not sorted
        and `strict` (the series then gets the detailed check)."""
        order: tuple[int, ...] | None = None
        ordered = names
        if any(a >= b for a, b in pairwise(names)):
            order = tuple(sorted(range(len(names)), key=names.__getitem__))
            ordered = tuple([names[i] for i in order])
        valid = (
            "__name__" in names
            and (order is None or not self.strict)
            and all(a < b for a, b in pairwise(ordered))
            and all(is_label_name(name) for name in names)
        )
        if not valid:
            return self._shapes.put(names, _INVALID)
        at = ordered.index("__name__")
        return self._shapes.put(names, (at, order, ordered[:at] + ordered[at + 1 :]))

    def _checked(self, pairs: list[tuple[str, str]]) -> tuple[str, tuple[tuple[str, str], ...]]:
        """`split` label by label, naming the first problem."""
        name = ""
        previous: str | None = None
        attributes: list[tuple[str, str]] = []
        if not self.strict:
            pairs = sorted(pairs, key=_label_name)
        for label_name, value in pairs:
            if previous is not None and label_name <= previous:
                if label_name == previous:
                    problem = "label names must be unique"
                    kind = "duplicate"
                else:
                    problem = "labels must be sorted by name: the receiver is strict"
                    kind = "unsorted"
                raise InvalidSeriesError(
                    f"{kind} label {label_name!r} ({problem}) in {describe(pairs)}"
                )
            previous = label_name
            if label_name == "__name__":
                name = value
            elif not is_label_name(label_name):
                raise InvalidSeriesError(f"invalid label name {label_name!r} in {describe(pairs)}")
            elif value:
                attributes.append((label_name, value))
        if not name:
            raise InvalidSeriesError(f"no __name__ label in {describe(pairs)}")
        if not is_metric_name(name):
            raise InvalidSeriesError(f"invalid metric name {name!r} in {describe(pairs)}")
        return name, tuple(attributes)
