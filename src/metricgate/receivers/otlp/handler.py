"""OTLP's part of an export on either transport: decode, count what was rejected, consume.

`http.py` and `grpc.py` read a request through the receiver skeleton (`receiving/core.py`,
`receiving/http.py`) and call `decode` then `consume`; refusals are `ConsumeError`s the transports
answer from their class (`MalformedError` for a body that does not decode). Points rejected one by
one (`invalid_point`) and points of metrics the tenant may not write (`metric_not_allowed`) are
counted and reported in `partial_success`, the rest consumed.

Invariant: `decode` is synchronous and the body is not referenced once it returns, so a request's
body is never held while the pipelines are awaited.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Final, cast

from metricgate.errors import MalformedError
from metricgate.receiving.compression import Body
from metricgate.receiving.core import ReceiverCore, RequestInfo
from metricgate.tenants import TenantStamp
from metricgate.wire.otlp.decode import ProtobufDecoder
from metricgate.wire.otlp.json import decode_json
from metricgate.wire.otlp.points import DecodeError, DecodeResult

log = logging.getLogger("metricgate.receivers.otlp")

INVALID_POINT: Final = "invalid_point"


@dataclass(frozen=True, slots=True)
class Accepted:
    """A request taken: `points` went to the pipelines, `rejected` were invalid and dropped."""

    points: int
    rejected: int
    error_message: str


class ExportHandler:
    """Decodes and consumes export requests for one receiver (both transports)."""

    def __init__(self, core: ReceiverCore, decoder: ProtobufDecoder) -> None:
        self.core = core
        self.decoder = decoder

    def decode(self, body: Body, as_json: bool, stamp: TenantStamp | None = None) -> DecodeResult:
        """The request in `body`; `MalformedError` when it is not an OTLP metrics request.
        The protobuf decoder stamps `stamp`'s tenant as it decodes (`result.stamped`)."""
        # upb and json.loads read a bytearray in place; the decoders are annotated for bytes.
        data = cast(bytes, body)
        try:
            return decode_json(data) if as_json else self.decoder.decode(data, stamp)
        except DecodeError as exc:
            raise MalformedError(str(exc)) from None

    async def consume(self, result: DecodeResult, info: RequestInfo) -> Accepted:
        """Hand the decoded points to the pipelines (raising the refusal to answer with)."""
        core, transport = self.core, info.transport
        if result.rejected:
            message = result.error_message
            core.rejected(transport, INVALID_POINT, result.rejected, info.peer, message)
        if result.forged:
            core.forged(info, result.forged)
        batch, refused, message = core.allowed(result.batch, info)
        points = await core.consume(batch, transport, info, stamped=result.stamped)
        if not refused:
            return Accepted(points, result.rejected, result.error_message)
        messages = "; ".join(m for m in (result.error_message, message) if m)
        return Accepted(points, result.rejected + refused, messages)
