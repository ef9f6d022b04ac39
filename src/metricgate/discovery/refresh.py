"""What the polling mechanisms share: change tracking, quiet failure logs, the refresh loop.

- `GroupTable` turns "here is everything the source holds now" into the changed groups a
  discoverer sends (new or different groups, and an empty group for each source that vanished).
- `FailureLog` logs a failing source once when it starts failing (or fails differently), again
  every `repeat` seconds while it lasts, and once when it works again: a dead DNS server or a
  broken file must not write a line every refresh.
- `PeriodicDiscoverer` runs `refresh()` now and every `interval` (http_sd, dns_sd; Prometheus'
  `refresh.Discovery`), keeping the last groups when a refresh fails.

Invariant: the first send of a discoverer holds every group it knows (possibly none); a group is
sent again only when it changed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from abc import abstractmethod
from collections.abc import Callable, Iterable
from typing import Annotated

from pydantic import AfterValidator

from metricgate.config.types import Duration
from metricgate.discovery.targets import (
    Discoverer,
    OnRefresh,
    SendGroups,
    TargetGroup,
    ignore_refresh,
)
from metricgate.errors import describe

log = logging.getLogger("metricgate.discovery")


def _positive(seconds: float) -> float:
    if seconds <= 0:
        raise ValueError(f"expected a positive duration like 30s, got {seconds:g}s")
    return seconds


Interval = Annotated[Duration, AfterValidator(_positive)]
"""A `refresh_interval`: a duration above zero."""


class GroupTable:
    """The groups last sent, by source."""

    def __init__(self) -> None:
        self.groups: dict[str, TargetGroup] = {}

    def replace(self, groups: Iterable[TargetGroup]) -> list[TargetGroup]:
        """Make `groups` the whole state; return what changed (vanished sources as empty groups)."""
        # A group without targets is the same as no group: it is sent only to remove one.
        current = {group.source: group for group in groups if group.targets}
        changed = [group for source, group in current.items() if self.groups.get(source) != group]
        changed += [TargetGroup(source) for source in self.groups if source not in current]
        self.groups = current
        return changed

    def get(self, source: str) -> TargetGroup | None:
        """The group last sent for `source` (None when it has none)."""
        return self.groups.get(source)


class FailureLog:
    """Rate-limited warnings about failing sources of one discoverer, and their recovery."""

    def __init__(
        self,
        mechanism: str,
        repeat: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.mechanism = mechanism
        self.repeat = repeat
        self.clock = clock
        self.failing: dict[str, tuple[str, float]] = {}
        """source -> (error, when it was last logged); only sources of the current config."""

    def failed(self, source: str, error: str, keeping: str = "keeping its last targets") -> None:
        """`source` failed with `error`: log it unless the same error was logged recently."""
        now = self.clock()
        last = self.failing.get(source)
        if last is not None and last[0] == error and now - last[1] < self.repeat:
            return
        log.warning(
            "%s discovery failed for %s: %s; %s",
            self.mechanism,
            source,
            error,
            keeping,
            extra={"mechanism": self.mechanism, "source": source, "error": error},
        )
        self.failing[source] = (error, now)

    def succeeded(self, source: str) -> None:
        """`source` works (again): say so once if it was failing."""
        if self.failing.pop(source, None) is not None:
            log.info(
                "%s discovery works again for %s",
                self.mechanism,
                source,
                extra={"mechanism": self.mechanism, "source": source},
            )

    def forget(self, source: str) -> None:
        """`source` is gone (a deleted file): nothing more to say about it."""
        self.failing.pop(source, None)


class PeriodicDiscoverer(Discoverer):
    """Reads its whole source now and every `interval`; a failed read keeps the last groups."""

    def __init__(
        self,
        name: str,
        interval: float,
        on_refresh: OnRefresh = ignore_refresh,
        subject: str = "",
    ) -> None:
        self.name = name
        """Prefix of every group source (the job, the mechanism and the config's index)."""
        self.subject = subject or name
        """What a failed refresh's log line names (a URL)."""
        self.interval = interval
        self.on_refresh = on_refresh
        self.table = GroupTable()
        self.failures = FailureLog(self.mechanism)
        self._round_failed = False

    @abstractmethod
    async def refresh(self) -> list[TargetGroup]:
        """Everything the source holds now; sources missing from the result are removed.

        Raise to keep every last group (the error is logged); a mechanism reading several
        sources keeps the last groups of a failed one itself (`self.table.get`) and calls
        `self.failed` for it.
        """

    def failed(self, source: str, error: str) -> None:
        """Part of this refresh failed: log (rate-limited) and count the refresh as failed."""
        self._round_failed = True
        self.failures.failed(source, error)

    async def run(self, send: SendGroups) -> None:
        first = True
        while True:
            self._round_failed = False
            groups: list[TargetGroup] | None
            try:
                groups = await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.failed(self.subject, describe(exc))
                groups = None
            else:
                if not self._round_failed:
                    self.failures.succeeded(self.subject)
            self.on_refresh(self.mechanism, self._round_failed)
            changed = self.table.replace(groups) if groups is not None else []
            if first or changed:
                send(list(self.table.groups.values()) if first else changed)
                first = False
            await asyncio.sleep(self.interval)
