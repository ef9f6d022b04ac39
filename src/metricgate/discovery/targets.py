"""The discovery contract: target groups, and the discoverer that reports them.

It mirrors Prometheus' `discovery.Discoverer`: a discoverer runs until cancelled and sends lists of
groups. A group is identified by its `source` within its discoverer; a later group with the same
source replaces the earlier one, and a group with no targets removes it. The first send holds every
group the discoverer knows; later sends may hold only the groups that changed.

Invariant: every target label set holds `__address__` (`host:port`); labels are plain strings.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

Labels = Mapping[str, str]
"""One target's labels (`__address__`, `__meta_*`, ...), or a group's common labels."""


@dataclass(frozen=True, slots=True)
class TargetGroup:
    """A set of targets sharing a source and common labels (Prometheus' `targetgroup.Group`)."""

    source: str
    """Identifies the group within its discoverer (a file name and index, a DNS name, a pod)."""
    targets: tuple[Labels, ...] = ()
    labels: Labels = field(default_factory=dict)
    """Labels every target of the group gets, unless the target sets the same name itself."""


SendGroups = Callable[[list[TargetGroup]], None]
"""What a discoverer calls with new or changed groups."""


class Discoverer(ABC):
    """Watches one source of targets and reports its groups through `send`."""

    @abstractmethod
    async def run(self, send: SendGroups) -> None:
        """Send every known group, then each change, until cancelled.

        A failing source is logged and retried on the discoverer's own schedule (keeping the last
        groups it sent); `run` itself only returns when cancelled or when the source is static.
        """
