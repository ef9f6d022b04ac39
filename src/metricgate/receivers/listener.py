"""What every HTTP receiver shares: binding an aiohttp app, refusals, back-pressure statuses.

`HttpListener` binds with the access log off and aiohttp's own body decompression off: receivers
decompress with bounds of their own, after checking the wire size.
"""

from __future__ import annotations

from typing import Final

from aiohttp import web
from aiohttp.typedefs import Handler

from metricgate.config.types import split_endpoint

SHUTDOWN_TIMEOUT_S: Final = 5.0
RETRYABLE_STATUS: Final = {"queue_full": 429, "memory_limit": 429, "unavailable": 503}
"""HTTP status for each `RetryableError.reason`; anything else retryable is a 503."""


class Refused(Exception):
    """A request answered with an error status (and counted under `reason`)."""

    def __init__(
        self,
        status: int,
        reason: str,
        message: str,
        retry_after: float | None = None,
        points: int = 0,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.retry_after = retry_after
        self.points = points


class HttpListener:
    """One receiver's aiohttp server on one endpoint."""

    def __init__(self, name: str, endpoint: str, max_request_body_size: int) -> None:
        self.name = name
        self.endpoint = endpoint
        self.max_request_body_size = max_request_body_size
        self.port: int | None = None
        self._runner: web.AppRunner | None = None

    async def start(self, path: str, handler: Handler) -> int:
        """Serve every method of `path` with `handler`; return the bound port (port 0 works)."""
        app = web.Application(client_max_size=self.max_request_body_size)
        app.router.add_route("*", path, handler)
        runner = web.AppRunner(
            app,
            access_log=None,
            handle_signals=False,
            shutdown_timeout=SHUTDOWN_TIMEOUT_S,
            auto_decompress=False,
        )
        await runner.setup()
        host, port = split_endpoint(self.endpoint)
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as exc:
            await runner.cleanup()
            raise OSError(
                exc.errno, f"{self.name} cannot listen on {self.endpoint}: {exc.strerror}"
            ) from exc
        self._runner = runner
        addresses = runner.addresses
        self.port = int(addresses[0][1]) if addresses else port
        return self.port

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
