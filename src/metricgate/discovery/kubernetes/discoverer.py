"""The `kubernetes_sd_configs` discoverer: informers for a role's resources, groups on change.

It finds the API server (`config.connection`), starts one informer per resource the role needs and
per namespace, waits until each has listed once, sends every group, then sends the groups that
each change touches. A failing API server is retried by each informer (logged, rate-limited);
the groups last sent stay in force meanwhile.

Invariant: nothing is sent before every informer has listed once, so the first send is complete.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Mapping

from metricgate.discovery.client import HttpClient
from metricgate.discovery.kubernetes.api import Informer
from metricgate.discovery.kubernetes.config import (
    SERVICE_ACCOUNT_DIR,
    Connection,
    KubernetesSDConfig,
    connection,
)
from metricgate.discovery.kubernetes.endpoints import EndpointSliceRole, EndpointsRole
from metricgate.discovery.kubernetes.pod import PodRole
from metricgate.discovery.kubernetes.store import Role, Store
from metricgate.discovery.refresh import FailureLog
from metricgate.discovery.targets import Discoverer, OnRefresh, SendGroups, ignore_refresh
from metricgate.errors import describe

ROLES: dict[str, type[Role]] = {
    "pod": PodRole,
    "endpoints": EndpointsRole,
    "endpointslice": EndpointSliceRole,
}


class KubernetesDiscoverer(Discoverer):
    """Discovers the targets of one `kubernetes_sd_configs` entry by list and watch."""

    mechanism = "kubernetes"

    def __init__(
        self,
        config: KubernetesSDConfig,
        name: str = "kubernetes",
        on_refresh: OnRefresh = ignore_refresh,
        service_account_dir: str = SERVICE_ACCOUNT_DIR,
        environ: Mapping[str, str] | None = None,
        retry: float = 1.0,
    ) -> None:
        self.config = config
        self.name = name
        self.on_refresh = on_refresh
        self.service_account_dir = service_account_dir
        self.environ = os.environ if environ is None else environ
        self.retry = retry
        """First back-off after a failure (doubling to 30 s)."""
        self.failures = FailureLog(self.mechanism)

    async def _connect(self) -> tuple[Connection, HttpClient]:
        """The API server and an open client for it, retried until both work."""
        delay = self.retry
        while True:
            try:
                found = connection(self.config, self.service_account_dir, self.environ)
                client = HttpClient(found.http)
                client.open()  # reads the CA file
                return found, client
            except (OSError, ValueError) as exc:
                self.on_refresh(self.mechanism, True)
                self.failures.failed("the API server", describe(exc), "retrying")
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    async def run(self, send: SendGroups) -> None:
        found, client = await self._connect()
        store = Store()
        role = ROLES[self.config.role](store, self.name)
        ready = False

        def changed(informer: Informer, keys: list[str]) -> None:
            if ready:
                groups = role.changed(informer.resource, keys)
                if groups:
                    send(groups)

        informers = [
            Informer(
                client,
                found.base_url,
                resource,
                namespace,
                self.config.selector(resource.kind),
                changed,
                self.failures,
                self.on_refresh,
                retry=self.retry,
            )
            for resource in role.resources
            for namespace in found.namespaces
        ]
        for informer in informers:
            store.add(informer)
        tasks = [asyncio.create_task(informer.run()) for informer in informers]
        try:
            await asyncio.gather(*(informer.synced.wait() for informer in informers))
            ready = True
            send(role.everything())
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await client.close()
