"""The process-wide budget of request bytes that receivers hold at once.

Each request takes a `Lease`; bytes are charged as they come into memory (wire chunks as they are
read, decompressed output as it is produced) and all given back when the request is answered.
When a charge would push the total over the limit, it fails with `InFlightLimitError` (HTTP 503 +
`Retry-After`, gRPC UNAVAILABLE): a thousand slow uploads or a burst of compressed requests then
cost at most the budget, not a thousand times a request's limits. A request may go over the
budget alone (nothing else charged), so a limit smaller than one receiver's
`max_request_body_size` + `max_decompressed_size` slows traffic down but never refuses a request
for good.

Invariant: a lease's bytes are in `used` exactly while the lease holds them; `release()` is
idempotent and always runs when a request ends, however it ends.
"""

from __future__ import annotations

from typing import Final

from metricgate.errors import InFlightLimitError

DEFAULT_LIMIT: Final = 256 * 1024 * 1024
RETRY_AFTER_S: Final = 1.0


class InFlightBytes:
    """How many request bytes receivers hold right now, against a limit (see module docstring)."""

    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        self.limit = limit
        self.used = 0

    def lease(self) -> Lease:
        return Lease(self)


class Lease:
    """One request's share of an `InFlightBytes` budget."""

    __slots__ = ("_budget", "held")

    def __init__(self, budget: InFlightBytes) -> None:
        self._budget = budget
        self.held = 0

    def charge(self, size: int) -> None:
        """Hold `size` more bytes, or raise `InFlightLimitError` if the budget has no room."""
        budget = self._budget
        if budget.used + size > budget.limit and budget.used > self.held:
            raise InFlightLimitError(
                f"receivers already hold {budget.used} bytes of requests (limit "
                f"service.max_inflight_request_bytes = {budget.limit}); retry later",
                retry_after=RETRY_AFTER_S,
            )
        budget.used += size
        self.held += size

    def refund(self, size: int) -> None:
        """Give back `size` bytes that are no longer held (e.g. a body once decompressed)."""
        size = min(size, self.held)
        self.held -= size
        self._budget.used -= size

    def release(self) -> None:
        self.refund(self.held)
