"""Routing keys: the bytes a point is hashed by, per `routing_key`.

`series` hashes metric name + point attributes + resource attributes, so one series always reaches
one member (what stateful processors downstream need); `metric` hashes the name, `service` the
`service.name` resource attribute, `resource` all resource attributes, and `attributes` the values
of `routing_attributes` (looked up on the point, then on the resource). The three per-metric keys
route a whole `MetricPoints` group at once.

Invariant: a key is built from `repr` of strings, numbers and tuples only, which is the same in
every process and Python run (unlike `hash()`), so independent front instances agree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from metricgate.model import AttributeValue, Metric, Series


@dataclass(frozen=True, slots=True)
class Router:
    """How to compute the routing key; exactly one of the two functions is set."""

    per_metric: Callable[[Metric], bytes] | None
    per_series: Callable[[Series], bytes] | None


def _series_key(series: Series) -> bytes:
    metric = series.metric
    return repr((metric.name, series.attributes, metric.resource.attributes)).encode()


def _metric_key(metric: Metric) -> bytes:
    return metric.name.encode()


def _service_key(metric: Metric) -> bytes:
    return repr(metric.resource.get("service.name", "")).encode()


def _resource_key(metric: Metric) -> bytes:
    return repr(metric.resource.attributes).encode()


def _attributes_key(names: tuple[str, ...]) -> Callable[[Series], bytes]:
    def key(series: Series) -> bytes:
        point = dict(series.attributes)
        resource = series.metric.resource
        values: list[AttributeValue] = [
            point[name] if name in point else resource.get(name) for name in names
        ]
        return repr(tuple(values)).encode()

    return key


def router(routing_key: str, routing_attributes: list[str]) -> Router:
    """The `Router` for a validated `routing_key`."""
    if routing_key == "series":
        return Router(None, _series_key)
    if routing_key == "attributes":
        return Router(None, _attributes_key(tuple(routing_attributes)))
    per_metric = {"metric": _metric_key, "service": _service_key, "resource": _resource_key}
    return Router(per_metric[routing_key], None)
