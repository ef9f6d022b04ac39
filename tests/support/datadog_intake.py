"""A local Datadog v2 series intake that checks each request as the real one would.

`Intake` checks the API key (403), the body size as sent (413), the `Content-Encoding` (gzip,
deflate, zstd1; other -> 400), the decompressed size (413), strict JSON (no NaN) and the schema,
parsed with `datadog-api-client`'s `MetricPayload` model (unparsed parts -> 400), then each point's
time window (1 h old to 10 min ahead -> 400). Tests can queue forced answers (`intake.script`).
"""

from __future__ import annotations

import json
import math
import time
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import cramjam
from aiohttp import web
from datadog_api_client.configuration import Configuration
from datadog_api_client.model_utils import validate_and_convert_types
from datadog_api_client.v2.model.metric_payload import MetricPayload

from metricgate.exporters.datadog.payload import MAX_COMPRESSED, MAX_DECOMPRESSED

API_KEY = "0123456789abcdef0123456789abcdef"


_CONFIGURATION = Configuration()  # type: ignore[no-untyped-call]


class Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse(body: bytes, encoding: str) -> list[dict[str, Any]]:
    """The series of a request body, or `Refused` with the status the intake would answer."""
    if len(body) > MAX_COMPRESSED:
        raise Refused(413, f"payload of {len(body)} bytes is over {MAX_COMPRESSED}")
    try:
        if encoding == "gzip":
            raw = zlib.decompressobj(31).decompress(body, MAX_DECOMPRESSED + 1)
        elif encoding == "deflate":
            raw = zlib.decompressobj().decompress(body, MAX_DECOMPRESSED + 1)
        elif encoding == "zstd1":
            raw = bytes(cramjam.zstd.decompress(body))
        elif encoding == "":
            raw = body
        else:
            raise Refused(400, f"unsupported Content-Encoding {encoding!r}")
    except (zlib.error, cramjam.DecompressionError) as exc:
        raise Refused(400, f"body does not decompress: {exc}") from None
    if len(raw) > MAX_DECOMPRESSED:
        raise Refused(413, "decompressed payload is over 5 MiB")
    try:
        document = json.loads(raw, parse_constant=_no_constants)
    except ValueError as exc:
        raise Refused(400, f"invalid JSON: {exc}") from None
    model = validate_and_convert_types(  # type: ignore[no-untyped-call]
        document, (MetricPayload,), ["received_data"], True, True, _CONFIGURATION
    )
    if model._unparsed:
        raise Refused(400, "payload does not match the MetricPayload schema")
    now = time.time()
    series: list[dict[str, Any]] = document["series"]
    for item in series:
        if not isinstance(item.get("metric"), str) or not item["metric"]:
            raise Refused(400, "series without a metric name")
        if item.get("type", 0) not in (0, 1, 2, 3):
            raise Refused(400, f"unknown type {item.get('type')!r}")
        if not item["points"]:
            raise Refused(400, f"series {item['metric']} has no points")
        for point in item["points"]:
            value = point["value"]
            if not isinstance(value, int | float) or not math.isfinite(value):
                raise Refused(400, f"value {value!r} is not a finite number")
            if not now - 3600 <= point["timestamp"] <= now + 600:
                raise Refused(400, f"timestamp {point['timestamp']} is outside the window")
    return series


@dataclass
class Intake:
    """A running fake intake: what it accepted, and answers to force."""

    url: str = ""
    series: list[dict[str, Any]] = field(default_factory=list)
    requests: int = 0
    refusals: list[tuple[int, str]] = field(default_factory=list)
    encodings: list[str] = field(default_factory=list)
    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    """Forced (status, headers) answers, consumed one per request before any check."""
    forced_at: dict[int, tuple[int, dict[str, str]]] = field(default_factory=dict)
    """A forced answer for the n-th request (1-based)."""

    async def handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        body = await request.read()
        forced = self.forced_at.pop(self.requests, None)
        if forced is None and self.script:
            forced = self.script.pop(0)
        if forced is not None:
            status, headers = forced
            errors = [] if status < 300 else [f"forced {status}"]
            return web.json_response({"errors": errors}, status=status, headers=headers)
        encoding = request.headers.get("Content-Encoding", "")
        self.encodings.append(encoding)
        try:
            if request.headers.get("DD-API-KEY") != API_KEY:
                raise Refused(403, "Forbidden")
            series = parse(body, encoding)
        except Refused as refused:
            self.refusals.append((refused.status, str(refused)))
            return web.json_response({"errors": [str(refused)]}, status=refused.status)
        self.series.extend(series)
        return web.json_response({"errors": []}, status=202)


@asynccontextmanager
async def running_intake() -> AsyncIterator[Intake]:
    intake = Intake()
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/api/v2/series", intake.handle)
    runner = web.AppRunner(app, auto_decompress=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    intake.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield intake
    finally:
        await runner.cleanup()
