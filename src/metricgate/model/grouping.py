"""Building output batches from point groups: merging groups that share a metric, and slicing.

A batch holds one `MetricPoints` per metric descriptor; processors that combine batches (`batch`)
or map several input metrics onto one output metric (`resource`) restore that here.

Invariant: the input groups are never changed. A group that needs no merging is returned as the
same object; merged and sliced groups are new objects with new lists.
"""

from __future__ import annotations

from collections.abc import Iterable

from metricgate.model import Metric, MetricPoints


def merge_groups(groups: Iterable[MetricPoints]) -> list[MetricPoints]:
    """One group per metric, in first-seen order; points keep their relative order."""
    by_metric: dict[Metric, list[MetricPoints]] = {}
    for group in groups:
        if group.series:
            by_metric.setdefault(group.metric, []).append(group)
    return [parts[0] if len(parts) == 1 else concat(parts) for parts in by_metric.values()]


def concat(parts: list[MetricPoints]) -> MetricPoints:
    """The points of `parts` (all of one metric) in one new group."""
    out = MetricPoints(parts[0].metric)
    for part in parts:
        if part.exemplars:
            base = len(out.series)
            for index, exemplars in part.exemplars.items():
                out.add_exemplars(base + index, exemplars)
        out.series.extend(part.series)
        out.values.extend(part.values)
        out.timestamps.extend(part.timestamps)
        out.start_timestamps.extend(part.start_timestamps)
        out.flags.extend(part.flags)
    return out


def slice_group(group: MetricPoints, start: int, stop: int) -> MetricPoints:
    """Points `start:stop` of `group` as a new group."""
    out = MetricPoints(
        group.metric,
        group.series[start:stop],
        group.values[start:stop],
        group.timestamps[start:stop],
        group.start_timestamps[start:stop],
        group.flags[start:stop],
    )
    if group.exemplars:
        for index, exemplars in group.exemplars.items():
            if start <= index < stop:
                out.add_exemplars(index - start, exemplars)
    return out


def split_groups(groups: list[MetricPoints], max_points: int) -> list[list[MetricPoints]]:
    """`groups` cut into consecutive chunks of at most `max_points` points (0: one chunk)."""
    if max_points <= 0:
        return [groups]
    chunks: list[list[MetricPoints]] = []
    current: list[MetricPoints] = []
    room = max_points
    for group in groups:
        size = len(group.series)
        start = 0
        while start < size:
            take = min(room, size - start)
            current.append(group if take == size else slice_group(group, start, start + take))
            start += take
            room -= take
            if room == 0:
                chunks.append(current)
                current, room = [], max_points
    if current:
        chunks.append(current)
    return chunks
