"""What decoding one remote-write request produces: the points grouped by metric, the result.

`RequestPoints` groups a request's samples by metric as they are decoded (the receiver's hot
loop appends to its lists directly); `DecodeResult` carries the batch and what was refused, and
why, for the HTTP answer and the receiver's telemetry.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from metricgate.model import FLAG_NO_RECORDED_VALUE, Batch, Metric, MetricPoints, Series
from metricgate.wire.remotewrite.schema import STALE_NAN_BITS

_MAX_ERRORS: Final = 5
_DOUBLE: Final = struct.Struct("<d")
_STALE: Final = _DOUBLE.pack(struct.unpack("<d", STALE_NAN_BITS.to_bytes(8, "little"))[0])


class DecodeError(Exception):
    """The body is not a remote-write request at all (HTTP 400; nothing is delivered)."""


class InvalidSeriesError(Exception):
    """One series breaks the label rules; the message names it."""


@dataclass(slots=True)
class DecodeResult:
    """A decoded request: the batch of valid series and what was left out, and why."""

    batch: Batch
    samples: int = 0
    """Samples in the batch (staleness markers included)."""
    rejected: int = 0
    """Samples of invalid series, not delivered."""
    invalid_series: int = 0
    histograms: int = 0
    """Native histogram samples, dropped (not supported yet)."""
    exemplars: int = 0
    """Exemplars, ignored."""
    errors: list[str] = field(default_factory=list)
    metadata: bytes = b""
    """The request's 1.0 metadata alone, as a `WriteRequest` body ("" without any): what the
    other workers of a `--workers N` set must learn too."""

    def error_message(self) -> str:
        """The 400 body when series were invalid ("" when none were)."""
        if not self.invalid_series:
            return ""
        return (
            f"{self.invalid_series} invalid series ({self.rejected} samples) rejected, the valid "
            f"ones were written ({self.samples} samples); first: " + "; ".join(self.errors)
        )


def is_stale(value: float) -> bool:
    """True for Prometheus' StaleNaN (an ordinary NaN is not a staleness marker)."""
    return _DOUBLE.pack(value) == _STALE


def describe(pairs: list[tuple[str, str]]) -> str:
    """A series in PromQL form, for error messages (cut at 200 characters)."""
    name = next((v for n, v in pairs if n == "__name__"), "")
    text = ", ".join(f"{n}={v!r}" for n, v in pairs if n != "__name__")
    found = f"{name}{{{text}}}"
    return found if len(found) <= 200 else found[:197] + "..."


Appenders = tuple[Callable[[Series], None], Callable[[float], None], Callable[[int], None]]


def add_invalid(result: DecodeResult, message: str, samples: int) -> None:
    result.invalid_series += 1
    result.rejected += samples
    if len(result.errors) < _MAX_ERRORS:
        result.errors.append(message)


class RequestPoints:
    """One request's points, grouped by metric: appended in place (the fast path) or by `add`.

    Groups are found by the metric's `id()` (a metric is held by its group while the request is
    decoded); start timestamps and flags, rare in remote-write, are kept aside until `finish`.
    """

    __slots__ = ("_groups", "_marks", "appenders")

    def __init__(self) -> None:
        self._groups: dict[int, MetricPoints] = {}
        self._marks: list[tuple[MetricPoints, int, int, int]] = []
        """(group, index, start timestamp, flags) of points that have either."""
        self.appenders: dict[int, Appenders] = {}
        """`id(metric)` -> the `append` of its group's series, values and timestamps."""

    def open(self, metric: Metric) -> Appenders:
        group = self._groups[id(metric)] = MetricPoints(metric)
        appenders = self.appenders[id(metric)] = (
            group.series.append,
            group.values.append,
            group.timestamps.append,
        )
        return appenders

    def add(self, series: Series, value: float, timestamp: int, start: int = 0) -> None:
        metric = series.metric
        group = self._groups.get(id(metric))
        if group is None:
            self.open(metric)
            group = self._groups[id(metric)]
        flags = FLAG_NO_RECORDED_VALUE if value != value and is_stale(value) else 0
        if start or flags:
            self._marks.append((group, len(group.series), start, flags))
        group.series.append(series)
        group.values.append(value)
        group.timestamps.append(timestamp)

    @property
    def count(self) -> int:
        return sum(len(group.series) for group in self._groups.values())

    def finish(self) -> list[MetricPoints]:
        """The groups, with their start timestamps and flags filled in."""
        for group in self._groups.values():
            group.start_timestamps = [0] * len(group.series)
            group.flags = [0] * len(group.series)
        for group, index, start, flags in self._marks:
            group.start_timestamps[index] = start
            group.flags[index] = flags
        return list(self._groups.values())
