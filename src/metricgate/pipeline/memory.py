"""Admission control shared by receivers and the memory limiter.

Receivers call `MemoryGuard.check()` *before* reading or decoding a request body, so a process
over its soft memory limit refuses work without allocating for it (the Collector decodes first and
refuses later, core #8632). The `memory_limiter` processor registers itself here and flips the
state from its timer; with no limiter configured `check()` is a single attribute test.
"""

from __future__ import annotations

from metricgate.errors import MemoryLimitError


class MemoryGuard:
    """Process-wide flag: are we over the soft memory limit, and for how long to back off."""

    def __init__(self) -> None:
        self.refusing = False
        self.retry_after = 1.0
        self.reason = ""

    def set_state(self, refusing: bool, reason: str = "", retry_after: float = 1.0) -> None:
        self.refusing = refusing
        self.reason = reason
        self.retry_after = retry_after

    def check(self) -> None:
        """Raise `MemoryLimitError` (retryable, with retry_after) while over the soft limit."""
        if self.refusing:
            raise MemoryLimitError(
                f"memory limit reached ({self.reason}); retry later", retry_after=self.retry_after
            )
