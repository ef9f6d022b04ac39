"""What the discovery tests share: run a discoverer, keep what it sends, wait for a state."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from metricgate.discovery import Discoverer, TargetGroup


class Received:
    """A discoverer's sends, merged into the current groups, with a way to wait for a state."""

    def __init__(self) -> None:
        self.sends: list[list[TargetGroup]] = []
        self.groups: dict[str, TargetGroup] = {}
        self.refreshes: list[tuple[str, bool]] = []
        self._changed = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def __call__(self, groups: list[TargetGroup]) -> None:
        self.sends.append(groups)
        for group in groups:
            if group.targets:
                self.groups[group.source] = group
            else:
                self.groups.pop(group.source, None)
        self._changed.set()

    def refreshed(self, mechanism: str, failed: bool) -> None:
        """An `OnRefresh` that records the calls."""
        self.refreshes.append((mechanism, failed))
        self._changed.set()

    def targets(self) -> list[dict[str, str]]:
        """Every target with its group's labels merged in (target labels win), by address."""
        merged = [
            {**group.labels, **target} for group in self.groups.values() for target in group.targets
        ]
        return sorted(merged, key=lambda labels: (labels["__address__"], sorted(labels.items())))

    def addresses(self) -> list[str]:
        return [target["__address__"] for target in self.targets()]

    async def wait_for(self, condition: Callable[[], Any], timeout: float = 15.0) -> None:
        """Return once `condition()` is true; fail after `timeout` seconds."""
        async with asyncio.timeout(timeout):
            while not condition():
                if self.task is not None and self.task.done():
                    self.task.result()  # the discoverer died: show why
                    raise AssertionError("the discoverer returned")
                self._changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), 0.5)


@contextlib.asynccontextmanager
async def running(
    discoverer: Discoverer, received: Received | None = None
) -> AsyncIterator[Received]:
    """Run `discoverer` in a task for the block; its sends go to the yielded `Received`."""
    received = received or Received()
    task = received.task = asyncio.create_task(discoverer.run(received))
    try:
        yield received
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
