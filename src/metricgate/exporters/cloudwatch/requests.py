"""Datum dicts -> `PutMetricData` requests within CloudWatch's limits.

botocore checks none of them, so this module does: at most `max_metrics` data (<= 1000) and
`MAX_BYTES` of JSON body a request (counted as botocore's JSON protocol writes it, before any
gzip, so the limit holds with compression off); `Values`/`Counts` arrays over 150 entries are
split into several data with the same name, dimensions and time (CloudWatch aggregates them);
a datum that cannot fit a request alone is counted in `oversized`, never sent. `spans` says which
input data each request was cut from: a datum belongs to the request holding its first part.

Invariant: every request returned is within every limit above.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from metricgate.exporters.cloudwatch.mapping import Datum

MAX_METRICS: Final = 1000
MAX_BYTES: Final = 1_000_000
"""Below the documented 1 MB (whether 10^6 or 2^20), with room for headers."""
MAX_VALUES: Final = 150


@dataclass
class Requests:
    """The `MetricData` lists of one batch's requests, and what could not be sent."""

    requests: list[list[Datum]] = field(default_factory=list)
    spans: list[tuple[int, int]] = field(default_factory=list)
    """Input data range [start, end) of each request (contiguous)."""
    oversized: int = 0


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.timestamp()
    raise TypeError(type(value).__name__)


def datum_size(datum: Datum) -> int:
    """Bytes `datum` takes in the JSON body (botocore writes timestamps as epoch seconds)."""
    return len(json.dumps(datum, default=_json_default, separators=(",", ":")).encode())


def split_values(datum: Datum) -> list[Datum]:
    """`datum`, or several copies with at most 150 `Values`/`Counts` each."""
    values = datum.get("Values")
    if values is None or len(values) <= MAX_VALUES:
        return [datum]
    counts = datum.get("Counts")
    out = []
    for i in range(0, len(values), MAX_VALUES):
        part = {**datum, "Values": values[i : i + MAX_VALUES]}
        if counts is not None:
            part["Counts"] = counts[i : i + MAX_VALUES]
        out.append(part)
    return out


def build(
    data: list[Datum], namespace: str, max_metrics: int = MAX_METRICS, max_bytes: int = MAX_BYTES
) -> Requests:
    """Pack `data` into requests within the limits (see module docstring)."""
    out = Requests()
    overhead = len(json.dumps({"Namespace": namespace, "MetricData": []}).encode())
    chunk: list[Datum] = []
    size = overhead
    start = 0
    for i, datum in enumerate(data):
        for n, part in enumerate(split_values(datum)):
            grown = datum_size(part) + 1
            if overhead + grown > max_bytes:
                out.oversized += 1
                continue
            if chunk and (len(chunk) >= max_metrics or size + grown > max_bytes):
                end = i if n == 0 else i + 1  # a datum stays with the request of its first part
                out.requests.append(chunk)
                out.spans.append((start, end))
                chunk, size, start = [], overhead, end
            chunk.append(part)
            size += grown
    if chunk:
        out.requests.append(chunk)
        out.spans.append((start, len(data)))
    return out
