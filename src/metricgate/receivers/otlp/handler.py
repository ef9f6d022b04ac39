"""The transport-independent half of an export: admit, decode, consume, count, log.

`http.py` and `grpc.py` read a request, call `ExportHandler.export`, and map its answer to their
status codes. A refused request raises `Refusal`, whose `reason` is also the telemetry label
(`malformed`, `too_large`, `unsupported`, `permanent`, `queue_full`, `memory_limit`,
`unavailable`, `internal`).

Invariant: points are counted once, as accepted or as refused with a reason; points of a request
whose body never decoded are unknown and not counted (the request is, by status code, in
`metricgate_receiver_requests_total`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Final

from metricgate.errors import MemoryLimitError, PermanentError, RetryableError
from metricgate.pipeline.component import Consumer
from metricgate.pipeline.host import Host
from metricgate.receivers.otlp.decode import ProtobufDecoder
from metricgate.receivers.otlp.json import decode_json
from metricgate.receivers.otlp.points import DecodeError

log = logging.getLogger("metricgate.receivers.otlp")

MALFORMED: Final = "malformed"
TOO_LARGE: Final = "too_large"
UNSUPPORTED: Final = "unsupported"
PERMANENT: Final = "permanent"
INTERNAL: Final = "internal"
INVALID_POINT: Final = "invalid_point"

_WARN_EVERY_S: Final = 10.0


class Refusal(Exception):
    """A request refused as a whole; `retry_after` (seconds) is set when a retry may succeed."""

    def __init__(self, reason: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Accepted:
    """A request taken: `points` went to the pipelines, `rejected` were invalid and dropped."""

    points: int
    rejected: int
    error_message: str


class _Warnings:
    """At most one warning per reason every few seconds; the rest go to debug."""

    def __init__(self) -> None:
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def log(self, reason: str, message: str, extra: dict[str, object]) -> None:
        now = time.monotonic()
        if now - self._last.get(reason, -_WARN_EVERY_S) >= _WARN_EVERY_S:
            self._last[reason] = now
            suppressed = self._suppressed.pop(reason, 0)
            log.warning(message, extra={**extra, "suppressed_since_last": suppressed})
        else:
            self._suppressed[reason] = self._suppressed.get(reason, 0) + 1
            log.debug(message, extra=extra)


class ExportHandler:
    """Decodes and consumes export requests for one receiver (both transports)."""

    def __init__(
        self, receiver_id: str, consumer: Consumer, host: Host, decoder: ProtobufDecoder
    ) -> None:
        self.receiver_id = receiver_id
        self.consumer = consumer
        self.host = host
        self.decoder = decoder
        telemetry = host.telemetry
        self._accepted = telemetry.receiver_accepted
        self._refused = telemetry.receiver_refused
        self._requests = telemetry.receiver_requests
        self._warnings = _Warnings()

    def admit(self, transport: str, peer: str) -> None:
        """Refuse before reading a body while the process is over its memory limit."""
        try:
            self.host.memory.check()
        except MemoryLimitError as exc:
            self.refused(transport, exc.reason, peer, str(exc))
            raise Refusal(exc.reason, str(exc), exc.retry_after) from None

    def count_request(self, transport: str, code: str) -> None:
        self._requests.labels(self.receiver_id, transport, code).inc()

    def refused(
        self, transport: str, reason: str, peer: str, message: str, points: int = 0
    ) -> None:
        """Count (when known) and log refused points."""
        if points:
            self._refused.labels(self.receiver_id, transport, reason).inc(points)
        self._warnings.log(
            reason,
            f"otlp request refused: {message}",
            {
                "receiver": self.receiver_id,
                "transport": transport,
                "peer": peer,
                "reason": reason,
                "points": points,
            },
        )

    async def export(self, body: bytes, as_json: bool, transport: str, peer: str) -> Accepted:
        """Decode `body` and hand its batch to the pipelines; raise `Refusal` if not taken."""
        try:
            result = decode_json(body) if as_json else self.decoder.decode(body)
        except DecodeError as exc:
            self.refused(transport, MALFORMED, peer, str(exc))
            raise Refusal(MALFORMED, str(exc)) from None
        if result.rejected:
            self.refused(transport, INVALID_POINT, peer, result.error_message, result.rejected)
        batch = result.batch
        points = batch.point_count()
        if points:
            try:
                await self.consumer.consume(batch)
            except RetryableError as exc:
                self.refused(transport, exc.reason, peer, str(exc), points)
                raise Refusal(exc.reason, str(exc), exc.retry_after) from None
            except PermanentError as exc:
                self.refused(transport, PERMANENT, peer, str(exc), points)
                raise Refusal(PERMANENT, str(exc)) from None
            except Exception as exc:
                log.exception(
                    "otlp receiver: consumer failed unexpectedly",
                    extra={"receiver": self.receiver_id, "transport": transport},
                )
                self.refused(transport, INTERNAL, peer, repr(exc), points)
                raise Refusal(INTERNAL, "internal error while accepting the data") from None
            self._accepted.labels(self.receiver_id, transport).inc(points)
        return Accepted(points, result.rejected, result.error_message)
