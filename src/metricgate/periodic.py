"""Background duties that run on a fixed interval: an expiry sweep, an fsync, a memory check.

`Periodic(what, interval, action, log)` runs `action` (a function, or a coroutine function) every
`interval` seconds in a task of its own, from `start()` until `stop()`. Every component with such
a duty uses it, so they all behave alike:

- a failing run is logged (with `what` and `extra`, and its traceback) and the next run goes ahead:
  a duty that died silently on one error (a full disk during an fsync, a racing file in an expiry
  sweep) would leave the component running without it, with nothing to show for it;
- `start()` and `stop()` are idempotent; `stop()` cancels the task and waits for it, so a stopped
  component runs no duty afterwards; a run in progress is cancelled where it awaits.

Duties whose next time depends on the outcome (a backoff after a failed fetch, a flush at the end
of a window) keep their own loops.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Callable, Mapping


class Periodic:
    """Runs one duty every `interval` seconds in a task, logging failures (see module)."""

    __slots__ = ("_task", "action", "extra", "interval", "log", "what")

    def __init__(
        self,
        what: str,
        interval: float,
        action: Callable[[], object],
        log: logging.Logger,
        extra: Mapping[str, object] | None = None,
    ) -> None:
        self.what = what
        self.interval = interval
        self.action = action
        self.log = log
        self.extra = dict(extra or {})
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None

    def start(self) -> None:
        """Start the task (first run after one interval); nothing if it runs already."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self.what)

    async def stop(self) -> None:
        """Cancel the task and wait until it ended; nothing if it does not run."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                result = self.action()
                if inspect.isawaitable(result):
                    await result
            except Exception:
                self.log.exception("%s failed; it runs again in %gs", self.what, self.interval,
                                   extra=self.extra)  # fmt: skip


def sweep_interval(lifetime: float, longest: float = 15.0) -> float:
    """How often to sweep for items older than `lifetime` seconds, so that one outlives it by at
    most a tenth (between 20 ms and `longest`)."""
    return min(max(lifetime / 10, 0.02), longest)
