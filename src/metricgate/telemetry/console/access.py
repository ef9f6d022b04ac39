"""Who may use the operator console: the one seam where an admin role will be checked.

The console shows the effective config, every tenant's cardinality and reloads the gateway, so
it is an admin surface. With `auth` on `service.telemetry.metrics`, the telemetry server runs its
`admin_gate` (`metricgate.access.AdminGate`: the request's principal, the `admin` role, an
`admin_access` audit line; `web.HTTPUnauthorized`, `web.HTTPForbidden` or
`web.HTTPTooManyRequests` otherwise) in one middleware before every route but the probes, the
console's included, so `Console.admin_gate` stays `open_gate` there; it is the console's own seam
for an application that has no such middleware.

Invariant: every console route, the page included, passes through `Console.admin_gate` first.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

AdminGate = Callable[[web.Request], Awaitable[None]]
"""Returns when the request may use the console; raises an `HTTPException` otherwise."""


async def open_gate(request: web.Request) -> None:
    """No authentication on the telemetry server: everyone who can reach it is an admin."""
