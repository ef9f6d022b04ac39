"""The receiver skeleton (the Collector's receiverhelper): admit, consume, count, log.

Every receiver, over HTTP or gRPC, runs a request through one `ReceiverCore`:

1. `admit(info)`: the admission checks, before a byte of the body is read. `info` carries the
   transport, the peer address, the request headers (gRPC: metadata) and the TLS peer certificate.
   Today the one check is the memory limiter; authentication, per-tenant rate limits and
   connection rights plug in here, once for every receiver.
2. The receiver reads, decompresses and decodes the body itself (the protocol part).
3. `consume(batch, transport)`: hands the batch to the pipelines and counts its points as
   accepted, or as refused under the error's `reason`; an unexpected exception becomes a
   `ConsumeError` (a bug: 500 / INTERNAL) after being logged with its traceback.
4. The transport answers a refusal (`ConsumeError` or, from admission, `AccessError`) from its
   class alone (`errors.py`: `http_status`, `grpc_code`, `retry_after`, an `Unauthenticated`'s
   `challenge`), calls `refused()` (one rate-limited log line per reason) and `count_request()`.

Invariant: a point is counted once, as accepted or as refused with a reason; the points of a
request whose body never decoded are unknown and not counted (the request is, by status code, in
`metricgate_receiver_requests_total`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Final

from metricgate.errors import AccessError, ConsumeError
from metricgate.model import Batch
from metricgate.pipeline.component import Consumer
from metricgate.pipeline.host import Host
from metricgate.pipeline.memory import MemoryGuard

Refusal = ConsumeError | AccessError
"""What a request is refused with: an error class of `errors.py` that knows its answer."""
REFUSALS: Final = (ConsumeError, AccessError)

WARN_EVERY_S: Final = 10.0
"""At most one warning per refusal reason per receiver this often; the rest go to debug."""


class RequestInfo:
    """What admission checks see of a request before its body is read.

    Each transport subclasses it (`receivers.http.HttpRequest`, the otlp receiver's gRPC call);
    headers and the peer certificate are read only when a check asks for them.
    """

    __slots__ = ("peer", "transport")

    def __init__(self, transport: str, peer: str) -> None:
        self.transport = transport
        """`http` or `grpc`, as in the telemetry's `transport` label."""
        self.peer = peer
        """The client's address (`host:port`, or gRPC's `ipv4:host:port`)."""

    @property
    def headers(self) -> Mapping[str, str]:
        """Request headers (gRPC: invocation metadata); look names up in lower case."""
        raise NotImplementedError

    @property
    def peer_certificate(self) -> bytes | None:
        """The client's TLS certificate (DER), or None without TLS or a client certificate."""
        raise NotImplementedError


AdmissionCheck = Callable[[RequestInfo], Awaitable[None] | None]
"""Raises a `Refusal` to refuse the request (`Unauthenticated` 401, `PermissionDenied` 403,
`RateLimitError` 429...); returns None, or an awaitable for a check that has to wait (a token
verified off the event loop), to admit it."""


def memory_check(memory: MemoryGuard) -> AdmissionCheck:
    """Refuse while the process is over its memory limit (`MemoryLimitError`: 429)."""

    def check(info: RequestInfo) -> None:
        memory.check()

    return check


class RefusalLog:
    """One warning per reason every `WARN_EVERY_S`, with the count suppressed since; the rest
    at debug level. A misbehaving sender retries every few milliseconds; the counters have
    every refusal, the log keeps readable."""

    def __init__(self, logger: logging.Logger) -> None:
        self._log = logger
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def log(self, reason: str, message: str, extra: dict[str, object]) -> None:
        now = time.monotonic()
        if now - self._last.get(reason, -WARN_EVERY_S) >= WARN_EVERY_S:
            self._last[reason] = now
            suppressed = self._suppressed.pop(reason, 0)
            self._log.warning(message, extra={**extra, "suppressed_since_last": suppressed})
        else:
            self._suppressed[reason] = self._suppressed.get(reason, 0) + 1
            self._log.debug(message, extra=extra)


class ReceiverCore:
    """Admission, consumption, counting and refusal logging for one receiver (any transport)."""

    def __init__(
        self,
        receiver_id: str,
        consumer: Consumer,
        host: Host,
        logger: logging.Logger,
        checks: tuple[AdmissionCheck, ...] | None = None,
    ) -> None:
        self.receiver_id = receiver_id
        self.consumer = consumer
        self.host = host
        self.checks = (memory_check(host.memory),) if checks is None else checks
        """Run in order by `admit`; the first to raise refuses the request."""
        self._log = logger
        self._refusals = RefusalLog(logger)
        telemetry = host.telemetry
        self._accepted = telemetry.receiver_accepted
        self._refused = telemetry.receiver_refused
        self._requests = telemetry.receiver_requests

    async def admit(self, info: RequestInfo) -> None:
        """Run the admission checks; raise the refusing check's `Refusal`."""
        for check in self.checks:
            pending = check(info)
            if pending is not None:
                await pending

    async def consume(self, batch: Batch, transport: str) -> int:
        """Hand `batch` to the pipelines; return its points, or raise the `ConsumeError` to
        answer with. Points are counted either way."""
        points = batch.point_count()
        if not points:
            return 0
        try:
            await self.consumer.consume(batch)
        except ConsumeError as exc:
            self._refused.labels(self.receiver_id, transport, exc.reason).inc(points)
            raise
        except Exception as exc:
            self._log.exception(
                "consumer failed unexpectedly",
                extra={"receiver": self.receiver_id, "transport": transport},
            )
            self._refused.labels(self.receiver_id, transport, ConsumeError.reason).inc(points)
            raise ConsumeError("internal error while accepting the data") from exc
        self._accepted.labels(self.receiver_id, transport).inc(points)
        return points

    def rejected(self, transport: str, reason: str, points: int, peer: str, message: str) -> None:
        """Count and log points dropped from a request that was otherwise taken."""
        if points:
            self._refused.labels(self.receiver_id, transport, reason).inc(points)
        self._refusals.log(
            reason,
            f"{self.receiver_id}: points rejected: {message}",
            {
                "receiver": self.receiver_id,
                "transport": transport,
                "peer": peer,
                "reason": reason,
                "points": points,
            },
        )

    def refused(self, error: Refusal, transport: str, peer: str) -> None:
        """Log a refused request (its points, when known, were counted by `consume`)."""
        self._refusals.log(
            error.reason,
            f"{self.receiver_id}: request refused: {error}",
            {
                "receiver": self.receiver_id,
                "transport": transport,
                "peer": peer,
                "reason": error.reason,
            },
        )

    def count_request(self, transport: str, code: str) -> None:
        self._requests.labels(self.receiver_id, transport, code).inc()
