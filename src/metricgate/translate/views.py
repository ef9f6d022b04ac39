"""What the translator answers per series: `SeriesView` (a series in Prometheus terms) and
`TargetInfo` (the `target_info` series of a resource)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from metricgate.model import Resource
from metricgate.translate.attributes import render_labels
from metricgate.translate.families import FamilyView


class SeriesView:
    """One series' Prometheus identity: its family and sorted label names and values.

    `label_names` tuples are shared between series with the same label names, so a million
    series of one metric cost one names tuple.
    """

    __slots__ = ("_pairs", "_values", "family", "label_names", "resource")

    def __init__(
        self,
        family: FamilyView,
        label_names: tuple[str, ...],
        label_values: tuple[str, ...] | None,
        resource: Resource,
        pairs: tuple[tuple[str, str], ...] | None = None,
    ) -> None:
        """Give `label_values`, or `pairs` (the labels as pairs when they exist already: a native
        series' own attributes); the other is derived when asked for."""
        self.family: Final = family
        self.label_names: Final = label_names
        self.resource: Final = resource
        self._values = label_values
        self._pairs = pairs

    @property
    def label_values(self) -> tuple[str, ...]:
        if self._values is None:
            assert self._pairs is not None
            self._values = tuple([value for _, value in self._pairs])
        return self._values

    @property
    def labels(self) -> tuple[tuple[str, str], ...]:
        """(name, value) pairs, sorted by name."""
        if self._pairs is None:
            self._pairs = tuple(zip(self.label_names, self.label_values, strict=True))
        return self._pairs

    def label_text(self) -> str:
        """The labels as exposition text without braces: `a="x",b="y"` (values escaped)."""
        return render_labels(self.label_names, self.label_values)

    def __repr__(self) -> str:
        return f"SeriesView({self.family.name!r}, {dict(self.labels)!r})"


@dataclass(frozen=True, slots=True)
class TargetInfo:
    """The `target_info` series of a resource; `key` is its (job, instance), "" when absent."""

    key: tuple[str, str]
    label_names: tuple[str, ...]
    label_values: tuple[str, ...]

    def label_text(self) -> str:
        return render_labels(self.label_names, self.label_values)
