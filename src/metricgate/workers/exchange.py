"""Batches and questions between the workers of one `--workers N` set, over unix sockets.

Worker i listens on `<worker directory>/worker-<i>.sock` (`metricgate.role`) and keeps one
connection to each other worker, opened on first use and again after it broke. A frame is a
header (kind, request id, payload length) and its payload; answers come back by request id in
any order, so one connection carries many requests at once.

- `ROUTE`: a pipeline id and a batch, written as `batches.py` says (series by number once the
  connection has carried them, which keeps routing cheap; every field of the model kept). The
  owner decodes it and hands it to that pipeline's entry (what follows the router
  in its graph). The answer is sent when that consume returns, so the client that sent the data
  is answered only once its owner took it: queued, or written to the owner's disk queue.
- `ASK`: a topic and a payload; the answer is what the owner's handler for the topic returns (a
  rendered Prometheus page, a telemetry page).
- `OK` and `FAIL` answer them. `FAIL` carries the error's class name, message and retry delay,
  and the asking worker raises the same class from `metricgate.errors` (a full queue in the owner
  is still a 429 for the client); anything else is an `UnavailableError`.

Routing (`Router`): every series of one metric name belongs to worker `role.owner(name, N)`, so
all state of a metric (its page family, aggregation outputs, delta state, per-metric cardinality
counts, per-series order to a remote-write backend) lives in exactly one worker. Metric names,
not series, because the stateful processors keep state across the series of one metric
(aggregation by some labels, per-metric series budgets), and because a batch is already grouped
by metric: routing costs one dictionary lookup per group, not per point.

Invariant: a worker that cannot reach an owner answers its client with a retryable error for the
whole request (503 / UNAVAILABLE); nothing is dropped without the client hearing of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import struct
from collections.abc import Callable
from itertools import count as counter
from typing import Final

from metricgate import errors, role
from metricgate.model import Batch, MetricPoints
from metricgate.model.caches import BoundedTable
from metricgate.pipeline.component import Consumer
from metricgate.pipeline.exchange import Answer
from metricgate.pipeline.link import Link
from metricgate.pipeline.persistent_queue import BatchCodec
from metricgate.telemetry.metrics import SelfMetrics
from metricgate.workers.batches import Incoming, Outgoing

log = logging.getLogger("metricgate.workers")

ROUTE: Final = 1
ASK: Final = 2
OK: Final = 3
FAIL: Final = 4

_HEADER: Final = struct.Struct(">BII")
_NAME: Final = struct.Struct(">H")
MAX_FRAME_BYTES: Final = 1 << 30
"""A frame above this is a broken peer, not data: the connection is closed."""
CONNECT_TIMEOUT_S: Final = 2.0
READ_BUFFER_BYTES: Final = 4 << 20
"""How much a connection reads ahead before it pauses the socket: a worker's part of a page is
megabytes, read in a few steps rather than in 64 KiB ones."""
ASK_TIMEOUT_S: Final = 30.0
DRAIN_S: Final = 5.0
"""How long a worker that shuts down still answers the requests it took."""
MAX_OWNERS: Final = 100_000
"""Metric names whose owner a router remembers (forgotten all at once past it)."""


class Unreachable(errors.UnavailableError):
    """Another worker could not be asked (it is restarting, or went away mid-request)."""


class _Closed:
    """A pipeline entry before the graph points it: refuses, as a gateway that is starting."""

    async def consume(self, batch: Batch) -> None:
        raise errors.UnavailableError("this worker's pipeline is not running yet")


class Router:
    """A pipeline's consumer under `--workers N`: keeps the groups this worker owns and sends
    each other group to its owner, all at once; returns when every part was taken."""

    __slots__ = ("_entry", "_exchange", "_owners", "_pipeline")

    def __init__(self, exchange: WorkerExchange, pipeline_id: str, entry: Link) -> None:
        self._exchange = exchange
        self._pipeline = pipeline_id
        self._entry = entry
        self._owners: BoundedTable[str, int] = BoundedTable(MAX_OWNERS)

    async def consume(self, batch: Batch) -> None:
        me, count = self._exchange.index, self._exchange.count
        parts: dict[int, list[MetricPoints]] = {}
        known, remember = self._owners.entries.get, self._owners.put
        for group in batch.metrics:
            name = group.metric.name
            owner = known(name)
            if owner is None:
                owner = remember(name, role.owner(name, count))
            parts.setdefault(owner, []).append(group)
        if not parts or list(parts) == [me]:
            await self._entry.consume(batch)
            return
        mine = parts.pop(me, None)
        if mine is None and len(parts) == 1:  # all of it to one owner: no task to start
            (owner,) = parts
            await self._exchange.route(owner, self._pipeline, batch)
            return
        sends = [
            self._exchange.route(owner, self._pipeline, Batch(g)) for owner, g in parts.items()
        ]
        if mine is not None:
            sends.append(self._entry.consume(Batch(mine)))
        outcomes = await asyncio.gather(*sends, return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome


class WorkerExchange:
    """This worker's side of the set: its socket, its links to the others, the routers and
    entries of its pipelines, and the topics it answers (see module docstring)."""

    def __init__(self, place: role.WorkerRole, telemetry: SelfMetrics) -> None:
        self.place = place
        self._codec = BatchCodec()
        self._routers: dict[str, Router] = {}
        self._entries: dict[str, Link] = {}
        self._topics: dict[str, Answer] = {}
        self._peers = {
            i: _PeerLink(i, place.socket_path(i), Outgoing(self._codec))
            for i in range(place.count)
            if i != place.index
        }
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        """Requests from the other workers being answered."""
        self._served: set[asyncio.StreamWriter] = set()
        self._routed = telemetry.counter(
            "metricgate_worker_routed_points",
            "Points this worker sent to the worker that owns their metric (--workers N), by that "
            "worker and outcome.",
            ["to_worker", "outcome"],
        )

    # -- the `Exchange` protocol -------------------------------------------------------------

    @property
    def index(self) -> int:
        return self.place.index

    @property
    def count(self) -> int:
        return self.place.count

    def router(self, pipeline_id: str) -> Consumer:
        found = self._routers.get(pipeline_id)
        if found is None:
            found = self._routers[pipeline_id] = Router(self, pipeline_id, self.entry(pipeline_id))
        return found

    def entry(self, pipeline_id: str) -> Link:
        found = self._entries.get(pipeline_id)
        if found is None:
            found = self._entries[pipeline_id] = Link(_Closed())
        return found

    def answer(self, topic: str, handler: Answer) -> None:
        self._topics[topic] = handler

    async def ask(self, worker: int, topic: str, payload: bytes) -> bytes:
        return await self._peers[worker].call(ASK, topic, payload, None)

    async def ask_peers(self, topic: str, payload: bytes) -> list[bytes]:
        calls = [peer.call(ASK, topic, payload, ASK_TIMEOUT_S) for peer in self._peers.values()]
        return list(await asyncio.gather(*calls))

    # -- running ------------------------------------------------------------------------------

    async def start(self) -> None:
        path = self.place.socket_path(self.place.index)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # left by this worker's crashed predecessor
        self._server = await asyncio.start_unix_server(self._serve, path, limit=READ_BUFFER_BYTES)
        os.chmod(path, 0o600)

    async def shutdown(self, drain_s: float = DRAIN_S) -> None:
        """Stop taking requests, give those in progress `drain_s` to be answered, then close
        every connection (the other workers' requests still open fail as `Unreachable`)."""
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.place.socket_path(self.place.index))
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=drain_s)
        for task in list(self._tasks):
            task.cancel()
        for writer in list(self._served):
            writer.close()
        for peer in self._peers.values():
            peer.close()

    async def route(self, owner: int, pipeline_id: str, batch: Batch) -> None:
        """Hand `batch` to worker `owner`'s pipeline `pipeline_id`; raises what it raised."""
        points = batch.point_count()
        try:
            await self._peers[owner].call(ROUTE, pipeline_id, batch, None)
        except errors.ConsumeError as exc:
            self._routed.labels(str(owner), exc.reason).inc(points)
            raise
        self._routed.labels(str(owner), "sent").inc(points)

    # -- serving the other workers ------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._served.add(writer)
        incoming = Incoming(self._codec)
        try:
            while True:
                kind, request_id, name, body = await _read_frame(reader)
                batch = None
                if kind == ROUTE:  # now, in frame order: the series numbers build up in it
                    batch = incoming.decode(body)
                task = asyncio.create_task(
                    self._answer(kind, request_id, name, body, batch, writer)
                )
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except asyncio.CancelledError:  # the event loop is closing: nothing left to answer
            pass
        except ValueError as exc:  # the two ends disagree: a new connection starts afresh
            log.error("worker %d: a peer's frame does not read (%s); closing", self.index, exc)
        finally:
            self._served.discard(writer)
            writer.close()

    async def _answer(
        self,
        kind: int,
        request_id: int,
        name: str,
        body: bytes,
        batch: Batch | None,
        writer: asyncio.StreamWriter,
    ) -> None:
        try:
            if batch is not None:
                await self.entry(name).consume(batch)
                answer = b""
            elif kind == ASK:
                handler = self._topics.get(name)
                if handler is None:
                    raise errors.UnavailableError(f"worker {self.index} does not serve {name!r}")
                answer = await handler(body)
            else:
                raise errors.PermanentError(f"unknown frame kind {kind}")
        except errors.ConsumeError as exc:
            _write(writer, FAIL, request_id, "", _failure(exc))
        except Exception as exc:
            log.exception("worker %d: request from a peer failed", self.index)
            _write(writer, FAIL, request_id, "", _failure(errors.UnavailableError(str(exc))))
        else:
            _write(writer, OK, request_id, "", answer)
        with contextlib.suppress(ConnectionError):
            await writer.drain()


class _PeerLink:
    """One connection to another worker, shared by all requests to it."""

    def __init__(self, index: int, path: str, outgoing: Outgoing) -> None:
        self.index = index
        self.path = path
        self.outgoing = outgoing
        self._writer: asyncio.StreamWriter | None = None
        self._reading: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[bytes]] = {}
        self._ids = counter(1)
        self._opening = asyncio.Lock()

    async def call(self, kind: int, name: str, body: bytes | Batch, timeout: float | None) -> bytes:
        """Send one request (`ROUTE`: a batch; `ASK`: bytes) and wait for its answer."""
        writer = await self._open()
        request_id = next(self._ids) & 0xFFFFFFFF
        answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = answer
        try:
            # Encoded and written with no await between: frames go out in numbering order.
            payload = self.outgoing.encode(body) if isinstance(body, Batch) else body
            _write(writer, kind, request_id, name, payload)
            await writer.drain()
            return await asyncio.wait_for(answer, timeout)
        except (ConnectionError, TimeoutError) as exc:
            raise Unreachable(f"worker {self.index} did not answer: {exc!r}") from None
        finally:
            self._pending.pop(request_id, None)

    async def _open(self) -> asyncio.StreamWriter:
        async with self._opening:
            if self._writer is not None and not self._writer.is_closing():
                return self._writer
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_unix_connection(self.path, limit=READ_BUFFER_BYTES),
                    CONNECT_TIMEOUT_S,
                )
            except (OSError, TimeoutError) as exc:
                raise Unreachable(
                    f"worker {self.index} is not reachable (restarting?): {exc}"
                ) from None
            self._writer = writer
            self.outgoing.reset()
            self._reading = asyncio.create_task(self._read(reader))
            return writer

    async def _read(self, reader: asyncio.StreamReader) -> None:
        why = "closed the connection"
        try:
            while True:
                kind, request_id, _, body = await _read_frame(reader, named=False)
                answer = self._pending.get(request_id)
                if answer is None or answer.done():
                    continue
                if kind == OK:
                    answer.set_result(body)
                else:
                    answer.set_exception(_raised(body, self.index))
        except (asyncio.IncompleteReadError, ConnectionError, ValueError) as exc:
            why = f"broke the connection ({exc!r})"
        finally:
            self.close()
            for answer in self._pending.values():
                if not answer.done():
                    answer.set_exception(Unreachable(f"worker {self.index} {why}"))

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._reading is not None and self._reading is not asyncio.current_task():
            self._reading.cancel()


def _write(
    writer: asyncio.StreamWriter, kind: int, request_id: int, name: str, body: bytes
) -> None:
    named = name.encode()
    prefix = _NAME.pack(len(named)) + named if kind in (ROUTE, ASK) else b""
    writer.write(_HEADER.pack(kind, request_id, len(prefix) + len(body)) + prefix)
    writer.write(body)


async def _read_frame(
    reader: asyncio.StreamReader, named: bool = True
) -> tuple[int, int, str, bytes]:
    kind, request_id, length = _HEADER.unpack(await reader.readexactly(_HEADER.size))
    if length > MAX_FRAME_BYTES:
        raise ValueError(f"frame of {length} bytes")
    payload = await reader.readexactly(length)
    if not named:
        return kind, request_id, "", payload
    (size,) = _NAME.unpack_from(payload)
    end = _NAME.size + size
    return kind, request_id, payload[_NAME.size : end].decode(), payload[end:]


def _failure(exc: errors.ConsumeError) -> bytes:
    retry_after = getattr(exc, "retry_after", 0.0)
    return json.dumps(
        {"type": type(exc).__name__, "message": str(exc), "retry": retry_after}
    ).encode()


_RAISABLE: Final[dict[str, Callable[[str, float], errors.ConsumeError]]] = {
    **{
        cls.__name__: (lambda message, _, cls=cls: cls(message))  # type: ignore[misc]
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.PermanentError)
    },
    **{
        cls.__name__: (lambda message, retry, cls=cls: cls(message, retry))  # type: ignore[misc]
        for cls in vars(errors).values()
        if isinstance(cls, type)
        and issubclass(cls, errors.RetryableError)
        and not issubclass(cls, errors.PartialExportError)
    },
}
"""How the asking worker raises an owner's failure again: the same class where one can be made
from a message (and retry delay)."""


def _raised(body: bytes, index: int) -> errors.ConsumeError:
    try:
        failure = json.loads(body)
        make = _RAISABLE.get(str(failure["type"]))
        message = f"worker {index}: {failure['message']}"
        if make is not None:
            return make(message, float(failure["retry"]))
        return errors.UnavailableError(message, float(failure["retry"]) or 1.0)
    except (ValueError, KeyError, TypeError):
        return Unreachable(f"worker {index} answered a failure that does not read")
