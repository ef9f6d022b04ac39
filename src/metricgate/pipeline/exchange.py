"""What the graph and the components need of a `--workers N` set, as protocols.

The implementation is `metricgate.workers` (above every component); the pipeline only places it:
`build_graph` puts each pipeline's `router` in front of its first processor that keeps state
(after the leading `stateless` ones, so a relabel that renames a metric routes by the new name),
and points the pipeline's `entry` at what follows it, where batches routed from the other workers
come in. Components that serve one view of the whole set (the Prometheus page, own telemetry)
`answer` a topic for their peers and `ask_peers` on theirs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from metricgate.pipeline.component import Consumer
from metricgate.pipeline.link import Link

Answer = Callable[[bytes], Awaitable[bytes]]
"""A topic's handler: the asking worker's payload in, this worker's answer out."""


class Exchange(Protocol):
    """The other workers of this set, as the pipeline and its components see them."""

    @property
    def index(self) -> int: ...

    @property
    def count(self) -> int: ...

    def router(self, pipeline_id: str) -> Consumer:
        """The consumer that keeps what this worker owns and sends the rest to its owners (the
        same object for a pipeline id across reloads)."""

    def entry(self, pipeline_id: str) -> Link:
        """Where a pipeline's routed batches continue, in this worker (the same `Link` across
        reloads; the graph points it)."""

    def answer(self, topic: str, handler: Answer) -> None:
        """Serve `topic` to the other workers (a later call for the topic replaces this one)."""

    async def ask(self, worker: int, topic: str, payload: bytes) -> bytes:
        """Worker `worker`'s answer to `topic` (no time limit: the answer may wait for a
        pipeline); its failure is raised here with its class (`ConsumeError`s)."""

    async def ask_peers(self, topic: str, payload: bytes) -> list[bytes]:
        """Every other worker's answer to `topic`, in worker order; raises `UnavailableError`
        when one of them cannot answer (a partial view is never served as whole)."""
