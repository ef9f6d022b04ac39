"""A push body -> `native_prometheus` metrics and their points, for one group.

The body is parsed by the shared exposition parser (text 0.0.4, or the delimited protobuf format
client_golang pushes by default) and converted by the shared `PageConverter`, so pushed and
scraped metrics follow the same rules (see `metricgate.translate.exposition`): counters stay
cumulative under their pushed name, histograms and summaries are assembled, and the `*_created`
gauges prometheus_client pushes become the start times of their series instead of series of
their own. Every series gets the group's labels (`job` and the rest of the grouping key), which
override pushed labels of the same name, as the Pushgateway does; empty label values are dropped.

As the Pushgateway does, a push is refused when a sample carries a timestamp or a series is
repeated.

Invariant: every returned point's series is of the returned metric.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from metricgate.model import Metric, PointValue, Resource, Scope, Series
from metricgate.translate.exposition import PageConverter
from metricgate.wire.exposition import (
    ExpositionError,
    Format,
    Labels,
    Page,
    TextParser,
    parse_protobuf,
)


class PushError(Exception):
    """The push cannot be taken: bad path, bad content, a conflict with another group."""


@dataclass(slots=True)
class Converted:
    """One pushed metric: its name (the family the Pushgateway replaces), metric and points."""

    name: str
    metric: Metric
    points: list[tuple[Series, PointValue, int]] = field(default_factory=list)
    """(series, value, start time in ns or 0)."""


def parse_push(body: bytes, body_format: Format) -> Page:
    """The page of a push body; raises `ExpositionError` (with the line) or `PushError`."""
    if body_format == "protobuf":
        page = parse_protobuf(body)
    else:
        try:
            text = body.decode()
        except UnicodeDecodeError as exc:
            raise PushError(f"body is not UTF-8: {exc}") from None
        page = TextParser(openmetrics=body_format == "openmetrics").parse(text)
    if page.duplicates:
        raise ExpositionError(page.duplicates[0], "a series is repeated in the push")
    if page.timestamps:
        line = page.lines[min(page.timestamps)]
        raise ExpositionError(line, "pushed metrics must not carry timestamps")
    return page


def convert(page: Page, grouping: Labels, resource: Resource, scope: Scope) -> list[Converted]:
    """The metrics and points of one push; raises `ExpositionError` for bad content."""

    def label(name: str, labels: Labels) -> tuple[str, Labels]:
        return name, merge(labels, grouping)

    converted = PageConverter(resource, scope, label).convert(page, time.time_ns())
    return [
        Converted(
            group.metric.name,
            group.metric,
            list(zip(group.series, group.values, group.start_timestamps, strict=True)),
        )
        for group in converted.groups
    ]


def merge(pushed: Labels, grouping: Labels) -> tuple[tuple[str, str], ...]:
    """Series attributes: pushed labels, overridden by the grouping labels; no empty values."""
    labels = dict(pushed)
    labels.update(grouping)
    return tuple(sorted((name, value) for name, value in labels.items() if value))
