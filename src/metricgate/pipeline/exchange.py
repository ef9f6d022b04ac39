"""What the graph and the components need of a `--workers N` set, as protocols.

The implementation is `metricgate.workers` (above every component); the pipeline only places it:
`build_graph` puts each pipeline's `router` in front of its first processor that keeps state
(after the leading `stateless` ones, so a relabel that renames a metric routes by the new name),
and points the pipeline's `entry` at what follows it, where batches routed from the other workers
come in. Components that serve one view of the whole set (the Prometheus page, own telemetry)
`answer` a topic for their peers and `ask_peers` on theirs; debug pages do it through
`WholeView`.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Generic, Protocol, TypeVar

from metricgate.pipeline.component import Consumer
from metricgate.pipeline.link import Link

T = TypeVar("T")
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


Query = dict[str, str]
"""A debug page's query parameters, as its workers read them."""


class WholeView(Generic[T]):
    """A debug page's data for the whole `--workers N` set: this worker's part and the others',
    merged (each worker owns a share of the targets and metrics, so one worker alone would show
    its share only). Without a set, the local part as it is.

    `local(query)` builds a worker's part (plain JSON data); `merge(parts, query)` joins the
    parts, in worker order. The other workers serve `topic` with their `local`, so a component
    builds its `WholeView` in `start` on every worker (a reload's new view replaces the old
    one's topic).
    """

    def __init__(
        self,
        exchange: Exchange | None,
        topic: str,
        local: Callable[[Query], T],
        merge: Callable[[list[T], Query], T],
    ) -> None:
        self._exchange = exchange if exchange is not None and exchange.count > 1 else None
        self._topic = topic
        self.local = local
        self._merge = merge
        if self._exchange is not None:
            self._exchange.answer(topic, self._answer)

    async def read(self, query: Query) -> T:
        """The whole set's data for `query`; `UnavailableError` when a worker cannot answer
        (never a part shown as the whole)."""
        mine = self.local(query)
        if self._exchange is None:
            return mine
        theirs = await self._exchange.ask_peers(self._topic, json.dumps(query).encode())
        return self._merge([mine, *(json.loads(part) for part in theirs)], query)

    async def _answer(self, payload: bytes) -> bytes:
        return json.dumps(self.local(json.loads(payload))).encode()
