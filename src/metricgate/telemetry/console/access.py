"""Who may use the operator console: the one seam where an admin role will be checked.

The console shows the effective config, every tenant's cardinality and reloads the gateway, so
it is an admin surface. The telemetry server has no authentication yet (the security work wires
`auth:` into listeners later); until then `open_gate` admits everyone, as `/metrics` does. When
the telemetry server authenticates, it sets `Console.admin_gate` to a gate that resolves the
request's principal and raises `web.HTTPUnauthorized` (no or bad credentials) or
`web.HTTPForbidden` (a tenant without the `admin` role), so every console route is guarded at once.

Invariant: every console route, the page included, passes through `Console.admin_gate` first.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

AdminGate = Callable[[web.Request], Awaitable[None]]
"""Returns when the request may use the console; raises an `HTTPException` otherwise."""


async def open_gate(request: web.Request) -> None:
    """No authentication on the telemetry server: everyone who can reach it is an admin."""
