"""`mode: emf`: the Mapper's data as Embedded Metric Format events (stdout, a file or Logs).

Each event is one JSON object:
`{"_aws": {"Timestamp": ms, "CloudWatchMetrics": [{"Namespace": ns, "Dimensions": [[keys]],
"Metrics": [{"Name": n, "Unit": u, "StorageResolution": r}]}]}, "<dim>": "v", "<metric>": x}`.

- Data sharing a timestamp (ms) and a dimension set (keys and values) share an event, at most
  `MAX_METRICS` (100) metrics an event; more, or the same metric name twice, start another event.
- A dimension set has at most 30 keys: the Mapper already keeps the first 30 by name (counted as
  `dimensions_over_30`); this module enforces it again for safety.
- Histograms and summaries (`StatisticValues`) become four metrics, `<name>_count` (unit
  `Count`), `<name>_sum`, `<name>_min`, `<name>_max` (the metric's unit). A value array would
  make CloudWatch treat each entry as a sample (wrong count and sum), so it is not used.
- A metric whose name equals one of its dimension keys (or `_aws`) is dropped and counted as
  `emf_name_conflict`: it would overwrite the dimension value.

`output: logs` uses CloudWatch Logs `PutLogEvents` (botocore `logs` client; the group and stream
are created when missing): events sorted by time, batches of at most 10,000 events and
1,048,576 bytes (UTF-8 message plus 26 bytes an event) spanning at most 24 h; an event that
cannot fit a batch alone is counted as `event_too_large`. Throttling, 5xx and network errors are
retryable: `export` raises `PartialExportError` whose remainder is the log batches not yet accepted
(an `Unsent`, sent in order on the retry; the Mapper runs once per batch; a failed write to stdout
or the file is owed the same way). A data point counts with the log batch holding its first
metric.

Invariant: every event written is valid EMF within the limits above.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections import Counter
from datetime import datetime
from typing import Any, Final

from metricgate.errors import RetryableError
from metricgate.exporters.cloudwatch.aws import AWS_ERRORS, classify, error_code, make_client
from metricgate.exporters.cloudwatch.config import CloudWatchExporterConfig
from metricgate.exporters.cloudwatch.mapping import MAX_DIMENSIONS, Datum, Mapper
from metricgate.model import Batch
from metricgate.pipeline.component import Exporter
from metricgate.pipeline.host import Host
from metricgate.pipeline.retry import Unsent, points_with_output, send_requests

log = logging.getLogger("metricgate.exporters.cloudwatch")

MAX_METRICS: Final = 100
MAX_BATCH_BYTES: Final = 1_048_576
EVENT_OVERHEAD: Final = 26
MAX_BATCH_EVENTS: Final = 10_000
MAX_BATCH_SPAN_MS: Final = 24 * 3600 * 1000

_BOTO_ERRORS: Final = AWS_ERRORS

Event = dict[str, Any]
LogEvent = dict[str, Any]
"""`{"timestamp": ms, "message": json}`, as `PutLogEvents` takes it."""


def _metrics(datum: Datum) -> list[tuple[str, str, float]]:
    """(name, unit, value) of the metrics one datum becomes."""
    name, unit = str(datum["MetricName"]), str(datum["Unit"])
    stats = datum.get("StatisticValues")
    if stats is not None:
        return [
            (f"{name}_count", "Count", stats["SampleCount"]),
            (f"{name}_sum", unit, stats["Sum"]),
            (f"{name}_min", unit, stats["Minimum"]),
            (f"{name}_max", unit, stats["Maximum"]),
        ]
    return [(name, unit, datum["Value"])]


def _millis(stamp: Any) -> int:
    if isinstance(stamp, datetime):
        return int(stamp.timestamp() * 1000)
    return int(float(stamp) * 1000)


def build_events(
    data: list[Datum],
    namespace: str,
    dropped: Counter[str],
    first_events: list[Event | None] | None = None,
) -> list[Event]:
    """EMF events for `data`, grouped and split as the module docstring says, time-ordered;
    `first_events` gets, per datum, the event holding its first metric (None: none did)."""
    open_events: dict[tuple[int, tuple[tuple[str, str], ...]], Event] = {}
    events: list[Event] = []
    for datum in data:
        pairs = tuple(sorted((d["Name"], d["Value"]) for d in datum["Dimensions"]))
        if len(pairs) > MAX_DIMENSIONS:
            dropped["dimensions_over_30"] += 1
            pairs = pairs[:MAX_DIMENSIONS]
        stamp = _millis(datum["Timestamp"])
        resolution = int(datum.get("StorageResolution", 60))
        keys = {k for k, _ in pairs}
        first: Event | None = None
        for name, unit, value in _metrics(datum):
            if name in keys or name == "_aws":
                dropped["emf_name_conflict"] += 1
                continue
            key = (stamp, pairs)
            event = open_events.get(key)
            if event is None or name in event or len(_directive(event)["Metrics"]) >= MAX_METRICS:
                event = open_events[key] = _new_event(stamp, namespace, pairs)
                events.append(event)
            _directive(event)["Metrics"].append(
                {"Name": name, "Unit": unit, "StorageResolution": resolution}
            )
            event[name] = value
            if first is None:
                first = event
        if first_events is not None:
            first_events.append(first)
    events.sort(key=lambda e: int(e["_aws"]["Timestamp"]))
    return events


def _new_event(stamp: int, namespace: str, pairs: tuple[tuple[str, str], ...]) -> Event:
    directive = {"Namespace": namespace, "Dimensions": [[k for k, _ in pairs]], "Metrics": []}
    event: Event = {"_aws": {"Timestamp": stamp, "CloudWatchMetrics": [directive]}}
    event.update(pairs)
    return event


def _directive(event: Event) -> dict[str, Any]:
    directive: dict[str, Any] = event["_aws"]["CloudWatchMetrics"][0]
    return directive


def to_line(event: Event) -> str:
    return json.dumps(event, separators=(",", ":"), allow_nan=False)


def log_batches(
    events: list[Event],
    dropped: Counter[str],
    max_bytes: int = MAX_BATCH_BYTES,
    max_events: int = MAX_BATCH_EVENTS,
    batch_of: dict[int, int] | None = None,
) -> list[list[LogEvent]]:
    """`PutLogEvents` batches for time-ordered `events`, within the Logs limits; `batch_of` gets
    `id(event)` -> the index of the batch it went into."""
    batches: list[list[LogEvent]] = []
    chunk: list[LogEvent] = []
    size = 0
    for event in events:
        message = to_line(event)
        stamp = int(event["_aws"]["Timestamp"])
        grown = len(message.encode()) + EVENT_OVERHEAD
        if grown > max_bytes:
            dropped["event_too_large"] += 1
            continue
        if chunk and (
            len(chunk) >= max_events
            or size + grown > max_bytes
            or stamp - int(chunk[0]["timestamp"]) > MAX_BATCH_SPAN_MS
        ):
            batches.append(chunk)
            chunk, size = [], 0
        chunk.append({"timestamp": stamp, "message": message})
        size += grown
        if batch_of is not None:
            batch_of[id(event)] = len(batches)
    if chunk:
        batches.append(chunk)
    return batches


class EmfExporter(Exporter):
    """Writes batches as EMF events to stdout, a file or CloudWatch Logs."""

    def __init__(self, component_id: str, config: CloudWatchExporterConfig) -> None:
        super().__init__(component_id)
        self.config = config
        self.mapper = Mapper(config)
        self.log_group = config.log_group_name
        self._client: Any = None
        self._host: Host | None = None
        self._ready = False

    async def start(self, host: Host) -> None:
        self._host = host
        if self.config.output == "logs":
            self._client = await asyncio.to_thread(make_client, self.config, "logs")

    async def shutdown(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await asyncio.to_thread(client.close)

    def events(self, batch: Batch) -> tuple[list[Event], int]:
        """Map `batch` (advancing the cumulative state), count what was dropped; the events and
        the data points they carry."""
        dropped = Counter[str]()
        followers: list[int] = []
        data = self.mapper.map(batch, followers=followers)
        events = build_events(data, self.config.namespace, dropped)
        self._count(dropped)
        return events, points_with_output(len(data), followers)

    def _count(self, extra: Counter[str]) -> None:
        dropped = self.mapper.take_dropped()
        dropped.update(extra)
        if not dropped:
            return
        log.warning(
            "points not sent to cloudwatch as they were",
            extra={"exporter": self.component_id, "reasons": dict(dropped)},
        )
        if self._host is not None:
            for reason, count in dropped.items():
                self._host.telemetry.exporter_dropped.labels(self.component_id, reason).inc(count)

    async def export(self, batch: Batch) -> int | None:
        logs = self.config.output == "logs"
        if isinstance(batch, Unsent) and batch.owned_by(self):
            pending: list[tuple[Any, int]] = batch.requests
        elif not batch:
            return None
        elif logs:
            pending = self._pending(batch)
        else:
            events, points = self.events(batch)
            lines = "".join(to_line(e) + "\n" for e in events)
            pending = [(lines, points)] if lines else []
        if logs:
            return await send_requests(self, pending, self._put, "log batches", in_order=True)
        return await send_requests(self, pending, self._write, "EMF writes")

    def _pending(self, batch: Batch) -> list[tuple[list[LogEvent], int]]:
        """`batch` as (PutLogEvents batch, points carried) pairs, in time order."""
        dropped = Counter[str]()
        followers: list[int] = []
        firsts: list[Event | None] = []
        data = self.mapper.map(batch, followers=followers)
        events = build_events(data, self.config.namespace, dropped, firsts)
        batch_of: dict[int, int] = {}
        batches = log_batches(events, dropped, batch_of=batch_of)
        self._count(dropped)
        points = [0] * len(batches)
        continuing = set(followers)
        for index, first in enumerate(firsts):
            # A point counts with the log batch of its first datum's first metric.
            if first is not None and index not in continuing:
                found = batch_of.get(id(first))
                if found is not None:
                    points[found] += 1
        return list(zip(batches, points, strict=True))

    async def _write(self, lines: str) -> None:
        try:
            await asyncio.to_thread(self._write_sync, lines)
        except OSError as exc:
            raise RetryableError(f"emf {self.config.output}: {exc}", 0.0) from exc

    def _write_sync(self, lines: str) -> None:
        if self.config.output == "stdout":
            sys.stdout.write(lines)
            sys.stdout.flush()
            return
        with open(self.config.path, "a", encoding="utf-8") as file:
            file.write(lines)

    async def _put(self, events: list[LogEvent]) -> None:
        if self._client is None:
            raise RetryableError("cloudwatch exporter is not started", 0.0)
        if not self._ready:
            await self._create()
        try:
            await asyncio.to_thread(self._put_sync, events)
            return
        except _BOTO_ERRORS as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise classify("PutLogEvents", exc) from exc
        self._ready = False
        await self._create()
        try:
            await asyncio.to_thread(self._put_sync, events)
        except _BOTO_ERRORS as exc:
            raise classify("PutLogEvents", exc) from exc

    def _put_sync(self, events: list[LogEvent]) -> None:
        answer = self._client.put_log_events(
            logGroupName=self.log_group, logStreamName=self.config.log_stream_name, logEvents=events
        )
        rejected = answer.get("rejectedLogEventsInfo") if isinstance(answer, dict) else None
        if rejected:
            log.warning(
                "cloudwatch logs rejected some events (too old, too new or expired)",
                extra={"exporter": self.component_id, "rejected": rejected},
            )

    async def _create(self) -> None:
        """Create the log group and stream unless they exist."""
        client = self._client
        for operation, call, args in [
            ("CreateLogGroup", client.create_log_group, {"logGroupName": self.log_group}),
            (
                "CreateLogStream",
                client.create_log_stream,
                {"logGroupName": self.log_group, "logStreamName": self.config.log_stream_name},
            ),
        ]:
            try:
                await asyncio.to_thread(call, **args)
            except _BOTO_ERRORS as exc:
                if error_code(exc) != "ResourceAlreadyExistsException":
                    raise classify(operation, exc) from exc
        self._ready = True
