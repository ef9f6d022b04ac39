"""Where the members are: a fixed list (`static`) or what a DNS name resolves to (`dns`).

A resolver calls `on_change(members)` with the sorted member addresses once in `start()` and again
whenever the set changes, and `on_resolve(outcome)` after every resolution (`success`, `empty`,
`error` or `timeout`; a static list resolves once, successfully). The DNS resolver resolves with
`loop.getaddrinfo` every `interval`; a failed or empty resolution keeps the previous members (a DNS
blip must not reshuffle every series).

Invariant: `on_change` only ever sees a non-empty, sorted, duplicate-free list that differs from
the previous one.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable
from typing import Protocol

from metricgate.exporters.loadbalancing.config import DnsResolverConfig
from metricgate.periodic import Periodic

log = logging.getLogger("metricgate.exporters.loadbalancing")

OnChange = Callable[[list[str]], Awaitable[None]]
OnResolve = Callable[[str], None]
"""Called with the outcome of each resolution, for telemetry."""
Lookup = Callable[[str, int], Awaitable[list[str]]]
"""`(hostname, port)` -> `host:port` addresses; a seam for tests."""


def _ignore(outcome: str) -> None:
    pass


class Resolver(Protocol):
    name: str
    """The `resolver` label of its telemetry: `static` or `dns`."""

    async def start(self, on_change: OnChange, on_resolve: OnResolve = _ignore) -> None: ...

    async def shutdown(self) -> None: ...


class StaticResolver:
    """The configured hostnames, once."""

    name = "static"

    def __init__(self, hostnames: list[str]) -> None:
        self.members = sorted(set(hostnames))

    async def start(self, on_change: OnChange, on_resolve: OnResolve = _ignore) -> None:
        on_resolve("success")
        await on_change(self.members)

    async def shutdown(self) -> None:
        pass


async def getaddrinfo_lookup(hostname: str, port: int) -> list[str]:
    """Every TCP address `hostname` resolves to, as `host:port` (`[v6]:port`)."""
    infos = await asyncio.get_running_loop().getaddrinfo(hostname, port, type=socket.SOCK_STREAM)
    out = []
    for family, _, _, _, address in infos:
        host = str(address[0])
        out.append(f"[{host}]:{port}" if family == socket.AF_INET6 else f"{host}:{port}")
    return out


class DnsResolver:
    """Resolves `hostname` now and every `interval` in a task it owns."""

    name = "dns"

    def __init__(self, config: DnsResolverConfig, lookup: Lookup = getaddrinfo_lookup) -> None:
        self.config = config
        self.lookup = lookup
        self.members: list[str] = []
        self._on_change: OnChange | None = None
        self._on_resolve: OnResolve = _ignore
        self._refresher = Periodic(
            f"dns refresh of {config.hostname}", config.interval, self.refresh, log,
            {"hostname": config.hostname},
        )  # fmt: skip
        self._failing = ""
        """What went wrong with the last resolution ("" when it worked): logged once per change,
        not on every refresh (the counters count each one)."""

    async def start(self, on_change: OnChange, on_resolve: OnResolve = _ignore) -> None:
        self._on_change = on_change
        self._on_resolve = on_resolve
        await self.refresh()
        self._refresher.start()

    async def refresh(self) -> None:
        """Resolve once; report the members if they changed."""
        config = self.config
        try:
            found = await asyncio.wait_for(
                self.lookup(config.hostname, config.port), config.timeout
            )
        except (OSError, TimeoutError) as exc:
            outcome = "timeout" if isinstance(exc, TimeoutError) else "error"
            self._on_resolve(outcome)
            if self._failing != outcome:
                log.warning(
                    "dns resolution failed; keeping the current members",
                    extra={"hostname": config.hostname, "error": f"{type(exc).__name__}: {exc}"},
                )
            self._failing = outcome
            return
        members = sorted(set(found))
        self._on_resolve("success" if members else "empty")
        if not members:
            if self._failing != "empty":
                log.warning(
                    "dns resolved no addresses; keeping the current members",
                    extra={"hostname": config.hostname},
                )
            self._failing = "empty"
            return
        if self._failing:
            log.info("dns resolution works again", extra={"hostname": config.hostname})
            self._failing = ""
        if members != self.members:
            self.members = members
            if self._on_change is not None:
                await self._on_change(members)

    async def shutdown(self) -> None:
        await self._refresher.stop()
