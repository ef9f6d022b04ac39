"""The local Datadog v2 series intake (`tests/support/datadog_intake.py`) checks requests as the
real one would.

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
from typing import Any

import aiohttp

from tests.support.datadog_intake import API_KEY, Intake, running_intake


def _series(**overrides: Any) -> dict[str, Any]:
    series = {
        "metric": "a.b",
        "type": 3,
        "points": [{"timestamp": int(time.time()), "value": 1.5}],
        "resources": [{"name": "h", "type": "host"}],
        "tags": ["k:v"],
    }
    return {**series, **overrides}


async def _post(intake: Intake, document: Any, key: str = API_KEY, encoding: str = "gzip") -> int:
    raw = json.dumps(document).encode()
    body = zlib.compress(raw) if encoding == "deflate" else raw
    if encoding == "gzip":
        packer = zlib.compressobj(6, zlib.DEFLATED, 31)
        body = packer.compress(raw) + packer.flush()
    headers = {"DD-API-KEY": key, "Content-Encoding": encoding}
    async with (
        aiohttp.ClientSession() as session,
        session.post(intake.url + "/api/v2/series", data=body, headers=headers) as response,
    ):
        return response.status


async def test_intake_accepts_a_valid_payload_and_refuses_bad_ones() -> None:
    now = int(time.time())
    async with running_intake() as intake:
        assert await _post(intake, {"series": [_series()]}) == 202
        assert await _post(intake, {"series": [_series()]}, encoding="deflate") == 202
        assert await _post(intake, {"series": [_series()]}, key="wrong") == 403
        assert await _post(intake, {"series": [_series(type=9)]}) == 400
        assert await _post(intake, {"series": [_series(metric=None)]}) == 400
        old = [{"timestamp": now - 3700, "value": 1.0}]
        assert await _post(intake, {"series": [_series(points=old)]}) == 400
        ahead = [{"timestamp": now + 700, "value": 1.0}]
        assert await _post(intake, {"series": [_series(points=ahead)]}) == 400
        nan = [{"timestamp": now, "value": math.nan}]
        assert await _post(intake, {"series": [_series(points=nan)]}) == 400
        assert await _post(intake, {"series": [_series()]}, encoding="br") == 400
        big = [_series(tags=[f"k:{'x' * 100}{i}" for i in range(60_000)])]
        assert await _post(intake, {"series": big}) == 413
    assert len(intake.series) == 2
