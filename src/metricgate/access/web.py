"""Admission for HTTP pages that are not receivers: a scrape page and the telemetry server.

`PageGate(guard)` runs a `ListenerGuard` on an aiohttp request (headers, peer address, mutual-TLS
client certificate) and answers a refusal as an aiohttp `HTTPException` carrying the same answer
receivers give: 401 with `WWW-Authenticate` (no header when the authenticator has no challenge,
as mTLS), 403, 429 or 503 with `Retry-After`; the message is the body. `AdminGate` adds the
`admin` role and writes `admin_access` to the audit log; it is the one check every admin page of
the telemetry server passes (the console, `/-/reload`, components' debug pages).

Invariant: a refusal's body is the error's message, which never contains the credential.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Final

from aiohttp import web

from metricgate.errors import AccessError, RetryableError, Unauthenticated
from metricgate.listeners import peer_certificate
from metricgate.tenants import Admitted, ListenerGuard

if TYPE_CHECKING:
    from metricgate.access.gateway import GatewayAccess

_ANSWERS: Final[dict[int, type[web.HTTPException]]] = {
    401: web.HTTPUnauthorized,
    403: web.HTTPForbidden,
    429: web.HTTPTooManyRequests,
    503: web.HTTPServiceUnavailable,
}


def refusal(error: AccessError | RetryableError) -> web.HTTPException:
    """The aiohttp answer to an admission refusal."""
    headers: dict[str, str] = {}
    if isinstance(error, RetryableError):
        headers["Retry-After"] = str(max(1, math.ceil(error.retry_after)))
    elif isinstance(error, Unauthenticated) and error.challenge:
        headers["WWW-Authenticate"] = error.challenge
    answer = _ANSWERS.get(error.http_status, web.HTTPInternalServerError)
    return answer(text=f"{error}\n", headers=headers)


class PageGate:
    """Authenticates requests to one HTTP page with its listener's guard."""

    def __init__(self, guard: ListenerGuard) -> None:
        self.guard = guard

    async def admit(self, request: web.BaseRequest) -> Admitted:
        """Who sent `request`; raises the aiohttp answer when it is refused."""
        try:
            return await self.guard.admit(
                request.headers, request.remote or "?", peer_certificate(request)
            )
        except (AccessError, RetryableError) as error:
            raise refusal(error) from None


class AdminGate(PageGate):
    """Admits principals whose tenant has the `admin` role; records each use in the audit log."""

    def __init__(self, guard: ListenerGuard, access: GatewayAccess) -> None:
        super().__init__(guard)
        self._access = access

    async def __call__(self, request: web.BaseRequest) -> None:
        admitted = await self.admit(request)
        assert admitted.principal is not None
        self._access.admin_access(
            admitted.principal.authenticator,
            admitted.principal.name,
            request.remote or "?",
            request.method,
            request.path,
        )
