"""Pushgateway groups: the grouping key in the URL, and what each push changes, as a batch.

A group is identified by its grouping key (`job` plus the label pairs of the URL path), within the
pushing tenant on a listener with `auth` (tenants' groups never replace each other), and holds, per
metric family, the series of its last push. `PUT` replaces the whole group, `POST` only the
families it pushes, `DELETE` removes the group. Series a push drops are ended in the same batch
with a staleness point (`FLAG_NO_RECORDED_VALUE`, before the new points), so the exporter removes
them at once. Every `PUT`/`POST` also sets the group's `push_time_seconds` gauge, as the
Pushgateway does; `DELETE` ends it.

State is in memory only: a restart forgets every group (pushers push again; exporters drop what
they held when their `metric_expiration` runs out).

Invariant: `plan()` never changes state; `commit()` applies exactly the plan that was delivered,
so a push the pipeline refused (429/503) leaves the group as it was.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import time
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import unquote

from metricgate.model import (
    FLAG_NO_RECORDED_VALUE,
    INTERNER,
    Batch,
    Metric,
    MetricKind,
    MetricPoints,
    Series,
)
from metricgate.receivers.pushgateway.points import Converted, PushError, merge
from metricgate.wire.exposition import Labels

SCOPE_NAME: Final = "metricgate/pushgateway"
PUSH_TIME: Final = "push_time_seconds"
RESERVED: Final = frozenset((PUSH_TIME, "push_failure_time_seconds"))
_PUSH_TIME_HELP: Final = "Last Unix time when changing this group in the Pushgateway succeeded."
_LABEL: Final = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")


def grouping_key(path: str) -> Labels:
    """The grouping key of `/metrics/job/<job>{/<label>/<value>}` (raw, percent-encoded path).

    A name suffixed `@base64` takes a URL-safe base64 value (padding optional; `=` is empty).
    An empty value (`/metrics/job/x/instance/`, what prom-client sends for `instance: ''`) means
    the label is absent, as in the Pushgateway; one trailing `/` after the last pair is ignored.
    """
    segments = path.split("/")
    if len(segments) % 2 and segments[-1] == "" and len(segments) > 4:
        segments.pop()
    if segments[:2] != ["", "metrics"] or len(segments) < 4 or len(segments) % 2:
        raise PushError(f"expected /metrics/job/<job>{{/<label>/<value>}}, got {path!r}")
    pairs: dict[str, str] = {}
    for index in range(2, len(segments), 2):
        name = unquote(segments[index])
        value = unquote(segments[index + 1])
        if name.endswith("@base64"):
            name = name.removesuffix("@base64")
            value = _base64(value, name)
        if index == 2 and name != "job":
            raise PushError(f"the grouping key must start with job, got {name!r}")
        if not _LABEL.match(name) or name.startswith("__"):
            raise PushError(f"invalid label name {name!r} in the grouping key")
        if name in pairs:
            raise PushError(f"label {name!r} twice in the grouping key")
        pairs[name] = value
    if not pairs["job"]:
        raise PushError("the job name must not be empty")
    return tuple(sorted((name, value) for name, value in pairs.items() if value))


def _base64(text: str, name: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        return raw.decode()
    except (binascii.Error, ValueError):
        raise PushError(f"invalid base64 value {text!r} for {name!r}") from None


GroupId = tuple[str, Labels]
"""A group: the tenant that pushed it ("" without `auth`) and its grouping key."""


@dataclass(slots=True)
class Plan:
    """What a request changes: the batch to deliver and the group's families afterwards."""

    key: GroupId
    batch: Batch
    families: dict[str, list[Series]] | None
    """None when the group is deleted."""
    points: int = 0


@dataclass(slots=True)
class _Group:
    families: dict[str, list[Series]] = field(default_factory=dict)


class GroupStore:
    """The groups of one receiver (in memory; see the module docstring)."""

    def __init__(self) -> None:
        self.groups: dict[GroupId, _Group] = {}
        self.resource = INTERNER.intern_resource(())
        self.scope = INTERNER.intern_scope(SCOPE_NAME)
        self._push_time = INTERNER.intern_metric(
            self.resource,
            self.scope,
            PUSH_TIME,
            "",
            MetricKind.GAUGE,
            description=_PUSH_TIME_HELP,
            native_prometheus=True,
        )

    def plan(self, method: str, key: Labels, pushed: list[Converted], tenant: str = "") -> Plan:
        """The effect of `PUT`, `POST` (with `pushed`) or `DELETE` on group `key` of `tenant`."""
        now = time.time_ns()
        group_id = (tenant, key)
        old = self.groups.get(group_id, _Group()).families
        if method == "DELETE":
            return self._deliver(group_id, None, old, list(old), [], now)
        for converted in pushed:
            if converted.name in RESERVED:
                raise PushError(f"{converted.name} is reserved for the gateway's own use")
            self._check_type(group_id, converted.metric)
        push_time = INTERNER.intern_series(self._push_time, merge((), key))
        fresh = [*pushed, Converted(PUSH_TIME, self._push_time, [(push_time, now / 1e9, 0)])]
        new = {} if method == "PUT" else dict(old)
        for converted in fresh:
            new[converted.name] = [point[0] for point in converted.points]
        replaced = list(old) if method == "PUT" else [c.name for c in fresh if c.name in old]
        return self._deliver(group_id, new, old, replaced, fresh, now)

    def commit(self, plan: Plan) -> None:
        """Apply a delivered plan."""
        if plan.families is None:
            self.groups.pop(plan.key, None)
        else:
            self.groups.setdefault(plan.key, _Group()).families = plan.families

    def _deliver(
        self,
        key: GroupId,
        new: dict[str, list[Series]] | None,
        old: dict[str, list[Series]],
        replaced: list[str],
        fresh: list[Converted],
        now: int,
    ) -> Plan:
        keep = {series for families in (new or {}).values() for series in families}
        stale: dict[Metric, MetricPoints] = {}
        for name in replaced:
            for series in old[name]:
                if series not in keep:
                    group = stale.get(series.metric)
                    if group is None:
                        group = stale[series.metric] = MetricPoints(series.metric)
                    group.append(series, math.nan, now, 0, FLAG_NO_RECORDED_VALUE)
        groups = list(stale.values())
        for converted in fresh:
            group = MetricPoints(converted.metric)
            for series, value, start in converted.points:
                group.append(series, value, now, start)
            if group.series:
                groups.append(group)
        plan = Plan(key, Batch(groups), new)
        plan.points = plan.batch.point_count()
        return plan

    def _check_type(self, key: GroupId, metric: Metric) -> None:
        """Refuse a family another group (of any tenant: they share the exporters' families)
        holds with another type (the exporter could not)."""
        for other_key, other in self.groups.items():
            if other_key == key:
                continue
            series = other.families.get(metric.name)
            if series and series[0].metric.kind is not metric.kind:
                raise PushError(
                    f"metric {metric.name} is pushed as {metric.kind.name.lower()}, but group "
                    f"{dict(other_key[1])} holds it as {series[0].metric.kind.name.lower()}"
                )
