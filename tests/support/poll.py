"""Wait for a condition by polling it (never by sleeping a fixed time and hoping).

The one polling helper of the suite: `wait_until` in coroutines, `block_until` elsewhere. Both
return the condition's first truthy result, so a test can wait for a value and use it. A test
that must show something did *not* happen makes a later event it can wait for (a marker batch
behind the one that must not come back) rather than sleeping and looking.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


async def wait_until(
    predicate: Callable[[], T],
    poke: Callable[[], Awaitable[Any] | Any] | None = None,
    timeout: float = 10.0,
    interval: float = 0.01,
) -> T:
    """Return `predicate()` once it is truthy; `poke()` (sync or async) runs before each look.

    Raises AssertionError after `timeout` seconds, so a test fails instead of hanging.
    """
    deadline = time.monotonic() + timeout
    while True:
        if poke is not None:
            result = poke()
            if inspect.isawaitable(result):
                await result
        found = predicate()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)


def block_until(
    predicate: Callable[[], T], timeout: float = 10.0, what: str = "", interval: float = 0.02
) -> T:
    """`wait_until` for tests that are not coroutines (driving a subprocess)."""
    deadline = time.monotonic() + timeout
    while not (found := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout}s: {what or predicate}")
        time.sleep(interval)
    return found
