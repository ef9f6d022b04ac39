"""Shards: concurrent senders, each owning a fixed subset of series so their order holds.

A `Shard` has a bounded queue of encoded fragments and one worker that joins fragments into a
request (up to `max_samples_per_send`, `max_batch_bytes`, or whatever arrived within
`flush_interval`), compresses it (snappy block format) and sends it, retrying retryable outcomes
with exponential backoff and jitter (at least the backend's `Retry-After`) until it is delivered,
`max_elapsed_time` passes or the shard closes. A request is never sent again after a 2xx.

Bodies are assembled as 1.0 whatever the protocol. While the exporter speaks 2.0 (`Client.v2`)
each body is converted at send time (`v2.py`); a 415 answer switches the whole exporter to 1.0
(logged once) and the same body goes out again as 1.0 straight away: the receiver wrote nothing,
so nothing is lost or duplicated. So does a 2xx without `X-Prometheus-Remote-Write-Samples-Written`
(a 1.0-only receiver that read the body as an empty 1.0 request; at worst the resend duplicates
identical samples). A body the converter cannot read goes out as 1.0.

Retrying lives here rather than in `ExporterQueue` because a batch is split across shards: the
queue would re-send the parts that were already delivered.

Invariant: a shard sends one request at a time, in queue order, so samples of one series (always
the same shard) reach the backend in the order they were encoded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable

import cramjam

from metricgate.exporters.prometheus_remote_write.client import Client, Outcome
from metricgate.exporters.prometheus_remote_write.telemetry import RemoteWriteMetrics
from metricgate.exporters.prometheus_remote_write.v2 import ConversionError, to_v2
from metricgate.exporters.prometheus_remote_write.wire import Fragment
from metricgate.pipeline.queue import RetrySettings

log = logging.getLogger(__name__)


class Shard:
    """One sender (see module docstring)."""

    def __init__(
        self,
        exporter_id: str,
        index: int,
        client: Client,
        metrics: RemoteWriteMetrics,
        retry: RetrySettings,
        *,
        capacity: int,
        max_samples: int,
        max_bytes: int,
        flush_interval: float,
        on_success: Callable[[], None],
    ) -> None:
        self.exporter_id = exporter_id
        self.index = index
        self.client = client
        self.metrics = metrics
        self.retry = retry
        self.max_samples = max_samples
        self.max_bytes = max_bytes
        self.flush_interval = flush_interval
        self.on_success = on_success
        self.capacity = capacity
        self.queue: asyncio.Queue[Fragment] = asyncio.Queue()
        self.queued_samples = 0
        """Samples waiting in `queue`; `put` waits while it is at `capacity`."""
        self._room = asyncio.Event()
        self._room.set()
        self._carry: Fragment | None = None
        self._closing = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"{self.exporter_id}-shard-{self.index}")

    async def put(self, fragment: Fragment) -> bool:
        """Queue `fragment`, waiting while the shard is full; True if it had to wait."""
        waited = False
        while self.queued_samples >= self.capacity:
            waited = True
            self._room.clear()
            await self._room.wait()
        self.queued_samples += fragment.samples
        self.queue.put_nowait(fragment)
        return waited

    def _took(self, fragment: Fragment) -> Fragment:
        self.queued_samples -= fragment.samples
        if self.queued_samples < self.capacity:
            self._room.set()
        return fragment

    async def close(self, deadline: float) -> int:
        """Send what is queued until `deadline` (monotonic), then stop; returns samples lost."""
        self._closing.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.queue.join(), max(0.0, deadline - time.monotonic()))
        lost = 0
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._carry is not None:
            lost += self._carry.samples
            self._carry = None
        while not self.queue.empty():
            lost += self.queue.get_nowait().samples
            self.queue.task_done()
        if lost:
            self.metrics.failed.labels(self.exporter_id, "shutdown").inc(lost)
        return lost

    async def _run(self) -> None:
        while True:
            first = self._carry or self._took(await self.queue.get())
            self._carry = None
            parts, samples, size, taken = [first.data], first.samples, len(first.data), 1
            deadline = time.monotonic() + self.flush_interval
            try:
                while samples < self.max_samples:
                    following = await self._next(deadline)
                    if following is None:
                        break
                    if samples + following.samples > self.max_samples or (
                        self.max_bytes and size + len(following.data) > self.max_bytes
                    ):
                        self._carry = following
                        break
                    parts.append(following.data)
                    samples += following.samples
                    size += len(following.data)
                    taken += 1
                await self._deliver(b"".join(parts), samples)
            except asyncio.CancelledError:
                self.metrics.failed.labels(self.exporter_id, "shutdown").inc(samples)
                raise
            except Exception:
                # A bug must not kill the worker: its queue would fill and stall the exporter.
                self.metrics.failed.labels(self.exporter_id, "error").inc(samples)
                log.exception("remote-write shard failed a request", extra={"shard": self.index})
            finally:
                for _ in range(taken):
                    self.queue.task_done()

    async def _next(self, deadline: float) -> Fragment | None:
        """The next fragment if one arrives before `deadline` (the carried-over one counts)."""
        try:
            return self._took(self.queue.get_nowait())
        except asyncio.QueueEmpty:
            pass
        remaining = deadline - time.monotonic()
        if remaining <= 0 or self._closing.is_set():
            return None
        getter = asyncio.ensure_future(self.queue.get())
        done, _ = await asyncio.wait((getter,), timeout=remaining)
        if not done:
            getter.cancel()
            await asyncio.wait((getter,))
            if getter.cancelled():
                return None
        return self._took(getter.result())

    async def deliver(self, body: bytes, samples: int) -> None:
        """Send one request body, retrying as configured (used directly by the persistent queue)."""
        await self._deliver(body, samples)

    async def _deliver(self, body: bytes, samples: int) -> None:
        # Compressed bodies by protocol (True: 2.0), each built once and kept for retries.
        payloads: dict[bool, bytes | None] = {}
        started = time.monotonic()
        interval = self.retry.initial_interval
        while True:
            v2 = self.client.v2
            if v2 and True not in payloads:
                payloads[True] = self._to_v2(body)
            payload = payloads.get(True) if v2 else None
            if payload is None:
                v2 = False
                payload = payloads.get(False)
                if payload is None:
                    payload = payloads[False] = bytes(cramjam.snappy.compress_raw(body))
            outcome = await self.client.send(payload, v2)
            if v2 and outcome.status == 415:
                if self.client.fall_back():
                    log.warning(
                        "remote-write receiver refused protocol 2.0 (415); using 1.0 from now on",
                        extra={"exporter": self.exporter_id, "body": outcome.message},
                    )
                continue
            if v2 and outcome.ok and outcome.samples_written is None and samples:
                # A 2.0 receiver must say what it wrote; one that does not is a 1.0 receiver that
                # parsed the body as an empty 1.0 request (Prometheus 2.x, VictoriaMetrics 1.x
                # answer 204 and store nothing). Resend as 1.0: at worst a duplicate, never a loss.
                if self.client.fall_back():
                    log.warning(
                        "remote-write receiver answered a 2.0 request without "
                        "X-Prometheus-Remote-Write-Samples-Written (it speaks 1.0 only); "
                        "using 1.0 from now on",
                        extra={"exporter": self.exporter_id, "status": outcome.status},
                    )
                continue
            if outcome.ok:
                self.metrics.sent.labels(self.exporter_id).inc(samples)
                self.on_success()
                written = outcome.samples_written
                if v2 and written is not None and written < samples:
                    log.debug(
                        "remote-write receiver wrote fewer samples than sent",
                        extra={"exporter": self.exporter_id, "sent": samples, "written": written},
                    )
                return
            if not outcome.retryable:
                self.metrics.dropped.labels(self.exporter_id, f"http_{outcome.status}").inc(samples)
                log.error(
                    "remote-write backend refused a request; samples dropped",
                    extra={
                        "exporter": self.exporter_id,
                        "status": outcome.status,
                        "samples": samples,
                        "body": outcome.message,
                    },
                )
                return
            wait = self._wait(outcome, interval, started)
            if wait is None:
                self.metrics.failed.labels(self.exporter_id, "retries_exhausted").inc(samples)
                log.error(
                    "remote-write request failed; giving up",
                    extra={"exporter": self.exporter_id, "samples": samples, **_describe(outcome)},
                )
                return
            self.metrics.retried.labels(self.exporter_id).inc(samples)
            log.warning(
                "remote-write request failed; will retry",
                extra={
                    "exporter": self.exporter_id,
                    "retry_in_s": round(wait, 3),
                    **_describe(outcome),
                },
            )
            with contextlib.suppress(TimeoutError):
                # Closing cuts the wait short for one last attempt.
                await asyncio.wait_for(self._closing.wait(), wait)
            interval = min(interval * self.retry.multiplier, self.retry.max_interval)

    def _to_v2(self, body: bytes) -> bytes | None:
        """The compressed 2.0 form of the 1.0 `body`, or None if it cannot be converted."""
        try:
            converted = to_v2(body)
        except ConversionError as exc:
            log.warning(
                "remote-write body not convertible to 2.0; sending it as 1.0",
                extra={"exporter": self.exporter_id, "error": str(exc)},
            )
            return None
        return bytes(cramjam.snappy.compress_raw(converted))

    def _wait(self, outcome: Outcome, interval: float, started: float) -> float | None:
        """Seconds before the next attempt, or None to give up."""
        if not self.retry.enabled or self._closing.is_set():
            return None
        jitter = self.retry.randomization_factor
        wait = max(interval * random.uniform(1 - jitter, 1 + jitter), outcome.retry_after)
        limit = self.retry.max_elapsed_time
        if limit and time.monotonic() - started + wait > limit:
            return None
        return wait


def _describe(outcome: Outcome) -> dict[str, object]:
    return {"status": outcome.status, "error": outcome.message}
