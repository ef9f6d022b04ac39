"""One ordered lane: a sender that delivers its pieces in order, one request at a time.

`lanes.py` runs several of them for a `LanedExporter` and says why. A `MemoryLane` holds pieces
in a bounded queue (by samples) and joins those that arrive within `flush_interval` into requests
of at most `max_samples` samples and `max_bytes` bytes; a `DiskLane` reads the same from its
write-ahead-log shard (the piece's tenant is the record's tag) and acknowledges a request's
records once it is settled. Both deliver with the exporter's `Delivery` (retries, counting,
failure log).

Invariant: a lane has at most one request in flight, and sends its pieces in the order queued;
a request holds the pieces of one tenant only (the exporter sends it with that tenant's header).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from metricgate.pipeline.delivery import Delivery, LeftOnDisk
from metricgate.pipeline.wal_shard import ShardLog

log = logging.getLogger("metricgate.pipeline.lanes")


class Piece(Protocol):
    """Encoded data for one lane: joined with its neighbours into a request body."""

    @property
    def data(self) -> bytes: ...

    @property
    def samples(self) -> int:
        """What `capacity` and `max_samples` count (remote-write: samples)."""

    @property
    def points(self) -> int:
        """The data points it carries (what the sent / send-failed counters count)."""

    @property
    def tenant(self) -> str:
        """Whose data it is ("" for none): pieces of two tenants never share a request."""


@dataclass(frozen=True, slots=True)
class LaneSettings:
    """How many lanes, how much each holds, and how requests are cut."""

    min: int = 1
    max: int = 10
    capacity: int = 10_000
    max_samples: int = 2000
    max_bytes: int = 0
    """0: no limit."""
    flush_interval: float = 0.2


class LaneRequest:
    """One request of a lane: its pieces' bytes joined, all of one `tenant`. The same object is
    retried, so an exporter may keep what it derives from the body (compressed forms) in
    `cache`."""

    __slots__ = ("body", "cache", "points", "samples", "tenant")

    def __init__(self, body: bytes, samples: int, points: int, tenant: str = "") -> None:
        self.body = body
        self.samples = samples
        self.points = points
        self.tenant = tenant
        self.cache: dict[object, bytes | None] = {}


Send = Callable[[LaneRequest], Awaitable[None]]
"""The exporter's one attempt at a request."""


class Lane:
    """What both kinds of lane share: a sender task, and how a request goes out."""

    def __init__(self, index: int, settings: LaneSettings, delivery: Delivery, send: Send) -> None:
        self.index = index
        self.settings = settings
        self.delivery = delivery
        self.send = send
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(
            self._run(), name=f"{self.delivery.exporter_id}-lane-{self.index}"
        )

    async def _run(self) -> None:
        raise NotImplementedError

    async def _send(self, request: LaneRequest) -> None:
        """Deliver `request` (see `Delivery`); a bug in it is counted and logged but never kills
        the lane, whose queue would fill and stall the exporter, or wedges it on one request."""
        delivery = self.delivery
        try:
            await delivery.deliver(self.send, request, request.points)
        except (asyncio.CancelledError, LeftOnDisk):
            raise
        except Exception:
            delivery.failed("error", request.points)
            log.exception(
                "lane failed a request",
                extra={"exporter": delivery.exporter_id, "lane": self.index},
            )


class MemoryLane(Lane):
    """One lane's queue of pieces and its sender task."""

    def __init__(self, index: int, settings: LaneSettings, delivery: Delivery, send: Send) -> None:
        super().__init__(index, settings, delivery, send)
        self.capacity = settings.capacity
        self.queue: asyncio.Queue[Piece] = asyncio.Queue()
        self.queued_samples = 0
        """Samples waiting in `queue`; `put` waits while it is at `capacity`."""
        self._room = asyncio.Event()
        self._room.set()
        self._carry: Piece | None = None
        self._closing = False

    async def put(self, piece: Piece) -> bool:
        """Queue `piece`, waiting while the lane is full; True if it had to wait."""
        waited = False
        while self.queued_samples >= self.capacity:
            waited = True
            self._room.clear()
            await self._room.wait()
        self.queued_samples += piece.samples
        self.queue.put_nowait(piece)
        return waited

    @property
    def backlog(self) -> int:
        """Samples queued, or taken and not yet sent."""
        carry = self._carry
        return self.queued_samples + (carry.samples if carry is not None else 0)

    async def drained(self) -> None:
        await self.queue.join()

    async def close(self, deadline: float) -> int:
        """Send what is queued until `deadline`, then stop; returns the points lost."""
        self._closing = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.queue.join(), max(0.0, deadline - time.monotonic()))
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        lost = 0
        if self._carry is not None:
            lost += self._carry.points
            self._carry = None
        while not self.queue.empty():
            lost += self.queue.get_nowait().points
            self.queue.task_done()
        self.delivery.failed("shutdown", lost)
        return lost

    def _took(self, piece: Piece) -> Piece:
        self.queued_samples -= piece.samples
        if self.queued_samples < self.capacity:
            self._room.set()
        return piece

    async def _run(self) -> None:
        settings = self.settings
        max_samples, max_bytes = settings.max_samples, settings.max_bytes
        while True:
            first = self._carry or self._took(await self.queue.get())
            self._carry = None
            parts, samples, points = [first.data], first.samples, first.points
            size, taken, tenant = len(first.data), 1, first.tenant
            deadline = time.monotonic() + settings.flush_interval
            try:
                try:
                    while samples < max_samples:
                        following = await self._next(deadline)
                        if following is None:
                            break
                        if (
                            samples + following.samples > max_samples
                            or (max_bytes and size + len(following.data) > max_bytes)
                            or following.tenant != tenant
                        ):
                            self._carry = following
                            break
                        parts.append(following.data)
                        samples += following.samples
                        points += following.points
                        size += len(following.data)
                        taken += 1
                except asyncio.CancelledError:
                    self.delivery.failed("shutdown", points)  # taken, never attempted
                    raise
                await self._send(LaneRequest(b"".join(parts), samples, points, tenant))
            finally:
                for _ in range(taken):
                    self.queue.task_done()

    async def _next(self, deadline: float) -> Piece | None:
        """The next piece if one arrives before `deadline`."""
        try:
            return self._took(self.queue.get_nowait())
        except asyncio.QueueEmpty:
            pass
        remaining = deadline - time.monotonic()
        if remaining <= 0 or self._closing:
            return None
        getter = asyncio.ensure_future(self.queue.get())
        done, _ = await asyncio.wait((getter,), timeout=remaining)
        if not done:
            getter.cancel()
            await asyncio.wait((getter,))
            if getter.cancelled():
                return None
        return self._took(getter.result())


class DiskLane(Lane):
    """Drains one shard log: read in order, send, acknowledge after the answer."""

    def __init__(
        self, index: int, settings: LaneSettings, delivery: Delivery, send: Send, shard: ShardLog
    ) -> None:
        super().__init__(index, settings, delivery, send)
        self.shard = shard
        self.busy = False

    async def close(self, deadline: float) -> int:
        """Let a request in flight finish until `deadline`; nothing is lost (it stays on disk)."""
        task, self._task = self._task, None
        if task is None:
            return 0
        if self.busy:
            await asyncio.wait((task,), timeout=max(0.0, deadline - time.monotonic()))
        while not task.done():
            task.cancel()  # again if a cancellation got swallowed (asyncio.wait_for in 3.11)
            await asyncio.wait((task,), timeout=1.0)
        with contextlib.suppress(asyncio.CancelledError):
            task.result()
        return 0

    async def _run(self) -> None:
        shard, settings, stopping = self.shard, self.settings, self.delivery.stopping
        while not stopping.is_set():
            if not shard.has_data.is_set():
                await shard.has_data.wait()
                if settings.flush_interval:
                    await asyncio.sleep(settings.flush_interval)  # let a request fill up
            records = shard.read(settings.max_samples, settings.max_bytes)
            if not records:
                await asyncio.sleep(0.05)  # nothing readable yet: never spin
                continue
            intact = [r for r in records if r.intact]  # the others were counted and logged
            if intact:
                request = LaneRequest(
                    b"".join(r.payload for r in intact),
                    sum(r.samples for r in intact),
                    sum(r.points for r in intact),
                    intact[0].tag.decode(errors="replace"),
                )
                self.busy = True
                try:
                    await self._send(request)
                except LeftOnDisk:
                    return
                finally:
                    self.busy = False
            try:
                shard.delivered(records[-1].end)
            except OSError:
                log.exception(
                    "persistent sending queue: could not persist the ack offset",
                    extra={"exporter": self.delivery.exporter_id, "lane": self.index},
                )
