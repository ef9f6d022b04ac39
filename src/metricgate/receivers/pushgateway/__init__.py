"""The `pushgateway` receiver: the Prometheus Pushgateway push API, feeding the pipelines.

Modules: `config` (the config model), `points` (a push body -> `native_prometheus` metrics and
points, through the shared exposition parser and converter), `groups` (grouping keys and what each
`PUT`/`POST`/`DELETE` changes), `http` (the listener and its status codes).

Groups live in memory only: a restart forgets them. Pushed series are sent once per push, so the
Prometheus exporter's `metric_expiration` still applies to them: give pipelines that carry pushed
metrics an exporter with a long expiration (longer than the longest interval between pushes).

Under `--workers N` only worker `SERVING_WORKER` listens: a group is state that each push
replaces or deletes as a whole, so every push of a group must reach the same place (pushes are
few: batch jobs at their end). What it feeds is routed to each metric's owner like any data.

Invariant: `start()` returns once the listener is bound (the port is in `port`); `shutdown()`
stops accepting and is idempotent.
"""

from __future__ import annotations

import logging

from metricgate import role
from metricgate.pipeline.component import Consumer, Receiver
from metricgate.pipeline.host import Host
from metricgate.pipeline.registry import receiver_factory
from metricgate.receivers.pushgateway.config import PushgatewayReceiverConfig
from metricgate.receivers.pushgateway.groups import GroupStore
from metricgate.receivers.pushgateway.http import PushgatewayServer

__all__ = [
    "FACTORY",
    "GroupStore",
    "PushgatewayReceiver",
    "PushgatewayReceiverConfig",
]

log = logging.getLogger("metricgate.receivers.pushgateway")

SERVING_WORKER = 0
"""The worker of a `--workers N` set that serves the push API."""


class PushgatewayReceiver(Receiver):
    """Takes Pushgateway pushes and feeds their series (and their ends) to the pipelines."""

    def __init__(
        self, component_id: str, config: PushgatewayReceiverConfig, next_consumer: Consumer
    ) -> None:
        super().__init__(component_id, next_consumer)
        self.config = config
        self.store = GroupStore()
        self.port: int | None = None
        self._server: PushgatewayServer | None = None

    async def start(self, host: Host) -> None:
        if role.CURRENT.shared and role.CURRENT.index != SERVING_WORKER:
            log.info(
                "pushgateway receiver: served by worker %d of the set",
                SERVING_WORKER,
                extra={"receiver": self.component_id},
            )
            return
        server = PushgatewayServer(
            self.component_id, self.config, self.next_consumer, host, self.store
        )
        self.port = await server.start()
        self._server = server
        log.info(
            "pushgateway receiver listening",
            extra={"receiver": self.component_id, "port": self.port},
        )

    async def shutdown(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            await server.stop()


FACTORY = receiver_factory(
    "pushgateway",
    PushgatewayReceiverConfig,
    PushgatewayReceiver,
    "The Prometheus Pushgateway push API (PUT/POST/DELETE, text or protobuf format)",
)
