"""Who may send to one receiver listener, and what each tenant may hold open on it.

A listener with `auth` gets a `ReceiverAccess`; `ReceiverCore.admit` runs it after the core's own
checks, before the body is read. `admit(info)`:

1. runs the listener's `ListenerGuard` on the request's headers, peer address and mutual-TLS
   client certificate: authentication (401, or 429 for an address that failed too often), the
   tenant (the tenant header only for delegates), its role and receiver rights (403) and an
   empty rate bucket (429), and records the principal and tenant on `info`;
2. refuses a tenant that may enter none of the pipelines the receiver feeds (403);
3. lowers `info.body_limit` to the tenant's `max_request_size`;
4. counts the tenant's concurrent connections (`max_connections`, per listener) and, on gRPC,
   calls in flight (`max_streams`): over a limit the request gets 429 (HTTP: and its connection
   is closed). On HTTP a connection counts for each tenant that sent on it until it closes; gRPC
   does not tell a server when a connection closes, so there a connection counts while it has a
   call of the tenant in flight.

Invariant: what `admit` counts for a request is given back exactly once: at the connection's
close (HTTP) or by `release(info)` when the call ends (gRPC; the transport calls it in a
`finally`, whether or not admission succeeded).
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Final

from metricgate.errors import ConcurrencyLimitError
from metricgate.listeners import ListenerSecurity
from metricgate.receiving.core import ReceiverCore, RequestInfo
from metricgate.tenants import ConcurrencyLimiter, ListenerGuard, TenantPolicy

GRPC: Final = "grpc"


class ReceiverAccess:
    """Admission for one receiver listener with `auth` (see module docstring)."""

    def __init__(self, core: ReceiverCore, guard: ListenerGuard) -> None:
        self.core = core
        self.guard = guard
        self.connections = ConcurrencyLimiter("connections")
        self.streams = ConcurrencyLimiter("streams")
        self._held: dict[Hashable, set[str]] = {}
        """HTTP: per open connection, the tenants it counts for."""
        self._calls: dict[tuple[Hashable, str], int] = {}
        """gRPC: per (connection, tenant), calls in flight."""

    @classmethod
    def of(cls, core: ReceiverCore, settings: ListenerSecurity) -> ReceiverAccess | None:
        """The access of a listener with these settings; None without `auth` (open)."""
        if settings.auth is None:
            return None
        access = core.host.access
        if access is None:
            raise RuntimeError(f"receiver {core.receiver_id!r} has auth but no gateway access")
        guard = access.guard(core.receiver_id, settings.auth)
        assert guard is not None
        return cls(core, guard)

    async def admit(self, info: RequestInfo) -> None:
        admitted = await self.guard.admit(info.headers, info.peer, info.peer_certificate)
        tenant = admitted.tenant
        assert tenant is not None
        info.principal = admitted.principal
        info.tenant = tenant
        self.core.require_pipelines(tenant)
        info.body_limit = tenant.request_size_limit(info.body_limit)
        config = tenant.config
        if info.transport == GRPC:
            self._hold_call(info, tenant)
        elif config.max_connections is not None:
            self._hold_connection(info, tenant)

    def release(self, info: RequestInfo) -> None:
        """A gRPC call ended: give back what `admit` counted for it (no-op if nothing)."""
        tenant = info.tenant
        if tenant is None or not info.holding:
            return
        info.holding = False
        config = tenant.config
        if config.max_streams is not None:
            self.streams.release(tenant.id)
        if config.max_connections is not None:
            key = (info.connection, tenant.id)
            calls = self._calls.get(key, 0)
            if calls <= 1:
                self._calls.pop(key, None)
                self.connections.release(tenant.id)
            else:
                self._calls[key] = calls - 1

    def _hold_call(self, info: RequestInfo, tenant: TenantPolicy) -> None:
        config = tenant.config
        if config.max_streams is not None:
            self.streams.acquire(tenant.id, config.max_streams)
        if config.max_connections is not None:
            key = (info.connection, tenant.id)
            calls = self._calls.get(key, 0)
            if not calls:
                try:
                    self.connections.acquire(tenant.id, config.max_connections)
                except ConcurrencyLimitError:
                    if config.max_streams is not None:
                        self.streams.release(tenant.id)
                    raise
            self._calls[key] = calls + 1
        info.holding = config.max_streams is not None or config.max_connections is not None

    def _hold_connection(self, info: RequestInfo, tenant: TenantPolicy) -> None:
        connection = info.connection
        held = self._held.get(connection)
        if held is not None and tenant.id in held:
            return
        self.connections.acquire(tenant.id, tenant.config.max_connections)
        if held is None:
            held = self._held[connection] = set()
            if not info.on_close(lambda: self._closed(connection)):
                del self._held[connection]
                self.connections.release(tenant.id)
                return
        held.add(tenant.id)

    def _closed(self, connection: Hashable) -> None:
        for tenant_id in self._held.pop(connection, ()):
            self.connections.release(tenant_id)
