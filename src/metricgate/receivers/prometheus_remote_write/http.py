"""The remote-write HTTP listener: `POST <path>`, snappy-compressed protobuf, on the skeleton.

The receiver skeleton (`receiving/http.py`) checks the method (405, `Allow: POST`), runs admission
(the memory limiter: 429 + `Retry-After`) and reads the body within its limits (413, 408, 503 when
the in-flight budget is spent). This module adds: `Content-Type` (415: 1.0 is
`application/x-protobuf`, optionally `;proto=prometheus.WriteRequest`, and an absent type is
taken as 1.0; 2.0 is `application/x-protobuf;proto=io.prometheus.write.v2.Request`; a 415 tells a
2.0 sender to fall back to 1.0), `Content-Encoding` (415 unless `snappy` or absent: the body is
snappy either way), the framed snappy format (400: remote-write uses the block format), the
declared decompressed length (413, checked before inflating), decoding (400) and the answers
(pipeline back-pressure: 429 for full queues and memory, 503 when unavailable, both with
`Retry-After`; a permanent refusal 400; a bug 500). Success is 204. When some series are invalid,
the valid ones are delivered first and the answer is 400 naming the first invalid series (what
Prometheus does: the sender drops the batch, the valid part is already written). Samples of
metrics the sender's tenant may not write (`allow_metrics`/`deny_metrics`) are answered the same
way: the rest is written and the 400 names the refused metrics (as Mimir answers its per-tenant
soft limits). 2.0 answers carry `X-Prometheus-Remote-Write-{Samples,Histograms,Exemplars}-Written`.

Invariant: the body is decoded and dropped before the pipelines are awaited.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any, Final, cast

from aiohttp import web

from metricgate import role
from metricgate.errors import MalformedError, UnavailableError, UnsupportedError
from metricgate.pipeline.component import Consumer
from metricgate.pipeline.exchange import Exchange
from metricgate.pipeline.host import Host
from metricgate.receivers.prometheus_remote_write.config import RemoteWriteReceiverConfig
from metricgate.receivers.prometheus_remote_write.decode import RemoteWriteDecoder, parse_v1
from metricgate.receivers.prometheus_remote_write.owners import EntryOwners, request_body
from metricgate.receivers.prometheus_remote_write.result import DecodeError, DecodeResult
from metricgate.receiving import compression
from metricgate.receiving.core import ReceiverCore
from metricgate.receiving.http import HttpReceiver, HttpRequest
from metricgate.wire.remotewrite.schema import V2_CONTENT_TYPE

log = logging.getLogger("metricgate.receivers.prometheus_remote_write")

TRANSPORT: Final = "http"
_V1_PROTOS: Final = ("", "prometheus.WriteRequest")
_V2_PROTO: Final = "io.prometheus.write.v2.Request"


class RemoteWriteServer:
    """The HTTP listener of one `prometheus_remote_write` receiver."""

    def __init__(
        self,
        receiver_id: str,
        config: RemoteWriteReceiverConfig,
        consumer: Consumer,
        host: Host,
        decoder: RemoteWriteDecoder,
    ) -> None:
        self.config = config
        self.decoder = decoder
        self.core = ReceiverCore(receiver_id, consumer, host, log)
        self.port: int | None = None
        self._owners: EntryOwners | None = None
        self._http = HttpReceiver(
            self.core,
            "",
            config.endpoint,
            config,
            path=config.path,
            methods=("POST",),
            encodings=("snappy",),
            max_request_body_size=config.max_request_body_size,
            max_decompressed_size=config.max_decompressed_size,
            handle=self._handle,
            config_path=f"receivers.{receiver_id}",
        )

    async def start(self) -> int:
        """Bind and serve; return the port (useful with port 0)."""
        exchange = self.core.host.exchange
        if exchange is not None:
            exchange.answer(self._metadata_topic, self._learn)
            exchange.answer(self._entries_topic, self._entries)
        self.port = await self._http.start()
        return self.port

    async def stop(self) -> None:
        await self._http.stop()

    async def _handle(self, request: HttpRequest) -> web.Response:
        headers = request.request.headers
        v2 = _is_v2(headers.get("Content-Type", ""))
        compression.coding(headers.get("Content-Encoding", ""), ("snappy",))
        body = self._body(request, await request.wire())
        request.release()
        exchange = self.core.host.exchange
        try:
            if exchange is not None and not v2 and request.tenant is None:
                return await self._handle_split(exchange, body, request)
            result = self.decoder.decode_v2(body) if v2 else self.decoder.decode_v1(body)
        except DecodeError as exc:
            raise MalformedError(str(exc)) from None
        del body
        written, messages = await self._deliver(result, request, request.peer)
        return _answer(v2, written, messages)

    async def _deliver(
        self, result: DecodeResult, request: HttpRequest | None, peer: str
    ) -> tuple[int, list[str]]:
        """Count what the decoder dropped, hand the rest to the pipelines (the tenant's part of
        it, with a `request`), share new metadata with the other workers; the samples written
        and the messages for a 400."""
        core = self.core
        if result.histograms:
            core.rejected(
                TRANSPORT,
                "native_histogram",
                result.histograms,
                peer,
                f"{result.histograms} native histogram samples dropped: not supported yet",
            )
        batch, refused, not_allowed = (
            core.allowed(result.batch, request) if request is not None else (result.batch, 0, "")
        )
        await core.consume(batch, TRANSPORT, request)
        if result.metadata and core.host.exchange is not None:
            await self._share(core.host.exchange, result.metadata)
        messages = [not_allowed] if refused else []
        if result.invalid_series:
            message = result.error_message()
            core.rejected(TRANSPORT, "invalid_series", result.rejected, peer, message)
            messages.append(message)
        return result.samples - refused, messages

    def _body(self, request: HttpRequest, wire: bytes) -> bytes:
        if wire.startswith(compression.SNAPPY_STREAM):
            raise MalformedError(
                "body uses the framed snappy format; remote-write requires the snappy block "
                "format (snappy.Encode, not a snappy stream writer)"
            )
        # The body is snappy whether or not Content-Encoding says so.
        return cast(bytes, request.decompress(wire, "snappy"))  # upb reads a bytearray in place

    # -- under `--workers N` -------------------------------------------------------------------
    # Entries go to the worker that owns their metric before they are decoded (`owners.py`);
    # metadata, which Prometheus sends in requests of its own (so to one worker), is taught by
    # that worker to the others, since a family's type decides how its series are decoded.

    async def _handle_split(
        self, exchange: Exchange, body: bytes, request: HttpRequest
    ) -> web.Response:
        parsed = parse_v1(body)
        del body
        if self._owners is None:
            self._owners = EntryOwners(role.CURRENT)
        parts = self._owners.split(list(parsed.timeseries))
        mine = parts.pop(exchange.index, [])
        theirs = [
            exchange.ask(owner, self._entries_topic, request_body(entries))
            for owner, entries in parts.items()
        ]
        local = self.decoder.decode_parsed_v1(_Entries(mine, parsed.metadata))
        here, *answers = await asyncio.gather(
            self._deliver(local, request, request.peer), *theirs, return_exceptions=True
        )
        for outcome in (here, *answers):
            if isinstance(outcome, BaseException):
                raise outcome
        assert isinstance(here, tuple)
        written, messages = here
        for answer in answers:
            told = json.loads(cast(bytes, answer))
            written += int(told["written"])
            messages += [str(message) for message in told["messages"]]
        return _answer(False, written, messages)

    async def _entries(self, payload: bytes) -> bytes:
        """Another worker's share of a request: entries this worker owns."""
        result = self.decoder.decode_v1(payload)
        written, messages = await self._deliver(result, None, "another worker")
        return json.dumps({"written": written, "messages": messages}).encode()

    @property
    def _entries_topic(self) -> str:
        return f"remote-write-entries/{self.core.receiver_id}"

    @property
    def _metadata_topic(self) -> str:
        return f"remote-write-metadata/{self.core.receiver_id}"

    async def _share(self, exchange: Exchange, metadata: bytes) -> None:
        try:
            await exchange.ask_peers(self._metadata_topic, metadata)
        except UnavailableError as exc:  # it comes again with the sender's next metadata
            log.warning("remote-write metadata not shared with every worker: %s", exc)

    async def _learn(self, metadata: bytes) -> bytes:
        result = self.decoder.decode_v1(metadata)
        await self.core.consume(result.batch, TRANSPORT)  # series ended by a new type
        return b""


@dataclass(slots=True)
class _Entries:
    """This worker's part of a parsed request, as `decode_parsed_v1` reads one."""

    timeseries: list[bytes]
    metadata: Any


def _answer(v2: bool, written: int, messages: list[str]) -> web.Response:
    answer: dict[str, str] = {}
    if v2:
        answer = {
            "X-Prometheus-Remote-Write-Samples-Written": str(written),
            "X-Prometheus-Remote-Write-Histograms-Written": "0",
            "X-Prometheus-Remote-Write-Exemplars-Written": "0",
        }
    if messages:
        return web.Response(status=400, text="; ".join(messages) + "\n", headers=answer)
    return web.Response(status=204, headers=answer)


def _is_v2(header: str) -> bool:
    """Which protocol `Content-Type` asks for; raise a 415 refusal for anything else."""
    media, _, parameters = header.partition(";")
    media = media.strip().lower()
    proto = ""
    for parameter in parameters.split(";"):
        key, _, value = parameter.partition("=")
        if key.strip().lower() == "proto":
            proto = value.strip().strip('"')
    if media in ("", "application/x-protobuf"):
        if proto == _V2_PROTO:
            return True
        if proto in _V1_PROTOS:
            return False
    raise UnsupportedError(
        f"unsupported Content-Type {header!r}; use application/x-protobuf (1.0) or "
        f"{V2_CONTENT_TYPE} (2.0)"
    )
