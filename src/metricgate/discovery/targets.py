"""The discovery contract: target groups, the discoverer that reports them, and its telemetry hook.

It mirrors Prometheus' `discovery.Discoverer`: a discoverer runs until cancelled and sends lists of
groups. A group is identified by its `source` within its discoverer; a later group with the same
source replaces the earlier one, and a group with no targets removes it. The first send holds every
group the discoverer knows (an empty list when it knows none yet); later sends hold only the groups
that changed.

Each discoverer reports every refresh of its source through an `OnRefresh` callback, so the
component running discovery can count refreshes and failures per mechanism (see `OnRefresh`).

Invariant: every target label set holds `__address__` (`host:port`, or a bare host where Prometheus
leaves the port to the scrape, as for a Kubernetes container that declares no port); labels are
plain, non-empty strings (Prometheus treats an empty label as an absent one, so none is sent).
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

OnRefresh = Callable[[str, bool], None]
"""Called after each refresh of a discoverer's source as `(mechanism, failed)`.

`mechanism` is the Prometheus name of the discovery: `static`, `file`, `http`, `dns` or
`kubernetes`. A refresh is one attempt to read the source: one pass over a file_sd config's files,
one HTTP request, one round of DNS queries over a config's names, one Kubernetes list or watch
request. `failed` is true when any part of it failed (the discoverer then keeps the groups it sent
last for that part and logs why, rate-limited). A receiver maps these calls onto its counters, e.g.
`metricgate_receiver_sd_refreshes_total{mechanism}` (every call) and
`metricgate_receiver_sd_refresh_failures_total{mechanism}` (calls with `failed`). The callback runs
on the event loop and must not block.
"""


def ignore_refresh(mechanism: str, failed: bool) -> None:
    """The `OnRefresh` used when nobody counts refreshes."""


class Discoverer(ABC):
    """Watches one source of targets and reports its groups through `send`."""

    mechanism: str = ""
    """Prometheus' name for the mechanism (`file`, `dns`, ...), the `OnRefresh` label."""

    @abstractmethod
    async def run(self, send: SendGroups) -> None:
        """Send every known group, then each change, until cancelled.

        A failing source is logged and retried on the discoverer's own schedule (keeping the last
        groups it sent); `run` itself only returns when cancelled or when the source is static.
        """


def join_host_port(host: str, port: int | str) -> str:
    """`host:port`, an IPv6 host in brackets (Go's `net.JoinHostPort`, as Prometheus writes)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
