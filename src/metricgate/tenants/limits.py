"""Concurrent connections and gRPC streams per tenant, so one tenant cannot fill a listener.

A listener holds one `ConcurrencyLimiter` per kind (connections, streams); `hold(tenant, limit)`
is a context manager around the connection's or call's lifetime.

Invariant: every successful `acquire` is matched by exactly one `release` (use `hold`), and a
tenant's count never goes negative; counts of tenants with nothing open are dropped, so the
table holds only tenants with open connections.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from metricgate.errors import ConcurrencyLimitError


class ConcurrencyLimiter:
    """Counts what each tenant holds open of one kind (`connections` or `streams`)."""

    def __init__(self, what: str = "connections") -> None:
        self.what = what
        self._open: dict[str, int] = {}

    def open_count(self, tenant: str) -> int:
        return self._open.get(tenant, 0)

    def acquire(self, tenant: str, limit: int | None) -> None:
        """Count one more for `tenant`, or refuse with 429 / RESOURCE_EXHAUSTED at `limit`."""
        current = self._open.get(tenant, 0)
        if limit is not None and current >= limit:
            raise ConcurrencyLimitError(
                f"tenant {tenant!r} already has {current} concurrent {self.what}, its limit "
                f"(tenants.{tenant}.max_{self.what})",
                retry_after=1.0,
            )
        self._open[tenant] = current + 1

    def release(self, tenant: str) -> None:
        current = self._open.get(tenant, 0)
        if current <= 1:
            self._open.pop(tenant, None)
        else:
            self._open[tenant] = current - 1

    @contextmanager
    def hold(self, tenant: str, limit: int | None) -> Iterator[None]:
        self.acquire(tenant, limit)
        try:
            yield
        finally:
            self.release(tenant)
