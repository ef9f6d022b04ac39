"""OTLP/JSON metrics requests -> `Batch`, with the same rules and result as the protobuf path.

OTLP/JSON is the protobuf JSON mapping with three twists the OTLP specification sets: field names
in lowerCamelCase (the only spelling accepted here), trace and span ids as hex strings (not
base64), and enums as integers (enum names are accepted too). 64-bit integers may come as numbers
or strings; doubles may also be "NaN", "Infinity" and "-Infinity". Unknown fields are ignored,
as the specification requires. A value of the wrong JSON type is a `DecodeError` (HTTP 400).

JSON is parsed into dicts by the standard library, so this path is far slower than protobuf; it
exists for clients that cannot send protobuf (browsers, curl, scripts).

Invariant: every decision about a point goes through `points`, so the same data decodes to the
same batch as its protobuf encoding (the tests check this).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from typing import Any

from metricgate.model import (
    INTERNER,
    Attributes,
    AttributeValue,
    BucketRange,
    Exemplar,
    Metric,
    MetricPoints,
    PointValue,
    Resource,
    Scope,
)
from metricgate.wire.otlp import points as p

_DATA_FIELDS = {
    "gauge": "gauge",
    "sum": "sum",
    "histogram": "histogram",
    "exponentialHistogram": "exponential_histogram",
    "summary": "summary",
}
_TEMPORALITY_NAMES = {
    "AGGREGATION_TEMPORALITY_UNSPECIFIED": 0,
    "AGGREGATION_TEMPORALITY_DELTA": 1,
    "AGGREGATION_TEMPORALITY_CUMULATIVE": 2,
}
_FLOAT_WORDS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_ANY_FIELDS = (
    "stringValue",
    "boolValue",
    "intValue",
    "doubleValue",
    "arrayValue",
    "kvlistValue",
    "bytesValue",
)


def decode_json(body: bytes) -> p.DecodeResult:
    """The batch in an OTLP/JSON `ExportMetricsServiceRequest`, or `DecodeError`."""
    try:
        document = json.loads(body) if body.strip() else {}
    except (ValueError, RecursionError) as exc:
        raise p.DecodeError(f"invalid JSON: {exc}") from None
    try:
        return _request(_object(document, "request"))
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise p.DecodeError(f"invalid OTLP/JSON: {exc}") from None


def _object(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise p.DecodeError(f"{what}: expected an object, got {type(value).__name__}")
    return value


def _array(value: Any, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise p.DecodeError(f"{what}: expected an array, got {type(value).__name__}")
    return value


def _string(value: Any, what: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise p.DecodeError(f"{what}: expected a string, got {type(value).__name__}")
    return value


def _integer(value: Any, what: str, low: int = -(2**63), high: int = 2**63 - 1) -> int:
    if value is None:
        return 0
    if isinstance(value, bool):
        raise p.DecodeError(f"{what}: expected an integer, got a boolean")
    if isinstance(value, str):
        number = int(value.strip(), 10) if value.strip().lstrip("-").isdigit() else None
    elif isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    else:
        number = None
    if number is None or not low <= number <= high:
        raise p.DecodeError(f"{what}: expected an integer, got {value!r}")
    return number


def _unsigned(value: Any, what: str) -> int:
    return _integer(value, what, 0, 2**64 - 1)


def _double(value: Any, what: str) -> float:
    if value is None:
        return 0.0
    if isinstance(value, bool):
        raise p.DecodeError(f"{what}: expected a number, got a boolean")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        word = _FLOAT_WORDS.get(value)
        if word is not None:
            return word
        number = float(value)
        if math.isfinite(number):
            return number
    raise p.DecodeError(f"{what}: expected a number, got {value!r}")


def _optional_double(point: dict[str, Any], key: str) -> float | None:
    value = point.get(key)
    return None if value is None else _double(value, key)


def _hex_id(value: Any, what: str) -> str:
    text = _string(value, what)
    try:
        return bytes.fromhex(text).hex()
    except ValueError:
        raise p.DecodeError(f"{what}: expected a hex string, got {text!r}") from None


def _any_value(value: Any) -> AttributeValue:
    if type(value) is dict and len(value) == 1:  # the common case, a plain string
        item = value.get("stringValue")
        if type(item) is str:
            return item
    found = _object(value, "value")
    present = [key for key in _ANY_FIELDS if found.get(key) is not None]
    if not present:
        return None
    if len(present) > 1:
        raise p.DecodeError(f"value: more than one of {', '.join(present)}")
    key = present[0]
    item = found[key]
    if key == "stringValue":
        return _string(item, key)
    if key == "boolValue":
        if not isinstance(item, bool):
            raise p.DecodeError(f"boolValue: expected a boolean, got {item!r}")
        return item
    if key == "intValue":
        return _integer(item, key)
    if key == "doubleValue":
        return _double(item, key)
    if key == "arrayValue":
        return tuple(_any_value(v) for v in _array(_object(item, key).get("values"), key))
    if key == "kvlistValue":
        return _attributes(_object(item, key).get("values"))
    text = _string(item, key)
    try:
        raw = base64.b64decode(text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4))
    except binascii.Error:
        raise p.DecodeError(f"bytesValue: expected base64, got {text!r}") from None
    return base64.b64encode(raw).decode("ascii")


def _attributes(value: Any) -> Attributes:
    pairs = []
    shared = p.shared_pair
    for item in _array(value, "attributes"):
        if item.__class__ is dict:  # the common case, a string attribute, checked inline
            key, found = item.get("key"), item.get("value")
            if key.__class__ is str and found.__class__ is dict and len(found) == 1:
                text = found.get("stringValue")
                if text.__class__ is str:
                    pairs.append(shared(key, text))
                    continue
        pair = _object(item, "attribute")
        pairs.append(shared(_string(pair.get("key"), "key"), _any_value(pair.get("value"))))
    return p.ordered_attributes(pairs)


def _request(document: dict[str, Any]) -> p.DecodeResult:
    groups = p.Groups()
    rejections = p.Rejections()
    bounds: dict[Metric, p.BoundsTable] = {}
    for item in _array(document.get("resourceMetrics"), "resourceMetrics"):
        resource_metrics = _object(item, "resourceMetrics")
        raw_resource = _object(resource_metrics.get("resource"), "resource")
        resource = INTERNER.intern_resource(
            _attributes(raw_resource.get("attributes")),
            _string(resource_metrics.get("schemaUrl"), "schemaUrl"),
        )
        for scope_item in _array(resource_metrics.get("scopeMetrics"), "scopeMetrics"):
            scope_metrics = _object(scope_item, "scopeMetrics")
            raw_scope = _object(scope_metrics.get("scope"), "scope")
            scope = INTERNER.intern_scope(
                _string(raw_scope.get("name"), "name"),
                _string(raw_scope.get("version"), "version"),
                _attributes(raw_scope.get("attributes")),
                _string(scope_metrics.get("schemaUrl"), "schemaUrl"),
            )
            for metric in _array(scope_metrics.get("metrics"), "metrics"):
                _metric(resource, scope, _object(metric, "metric"), groups, rejections, bounds)
    return groups.result(rejections)


def _metric(
    resource: Resource,
    scope: Scope,
    message: dict[str, Any],
    groups: p.Groups,
    rejections: p.Rejections,
    bounds: dict[Metric, p.BoundsTable],
) -> None:
    present = [key for key in _DATA_FIELDS if message.get(key) is not None]
    if not present:
        return
    if len(present) > 1:
        raise p.DecodeError(f"metric: more than one of {', '.join(present)}")
    data = _DATA_FIELDS[present[0]]
    body = _object(message[present[0]], present[0])
    data_points = [_object(d, "dataPoints") for d in _array(body.get("dataPoints"), "dataPoints")]
    if not data_points:
        return
    name = _string(message.get("name"), "name")
    if not name:
        rejections.add(p.NO_NAME, "", len(data_points))
        return
    temporality = 0
    if data not in ("gauge", "summary"):
        raw = body.get("aggregationTemporality")
        temporality = (
            _TEMPORALITY_NAMES.get(raw, -1)
            if isinstance(raw, str) and not raw.isdigit()
            else _integer(raw, "aggregationTemporality", -(2**31), 2**31 - 1)
        )
    monotonic = data == "sum" and body.get("isMonotonic") is True
    described = p.descriptor(data, temporality, monotonic)
    if described is None:
        rejections.add(p.BAD_TEMPORALITY, name, len(data_points))
        return
    kind, known_temporality, is_monotonic = described
    metric = INTERNER.intern_metric(
        resource,
        scope,
        name,
        _string(message.get("unit"), "unit"),
        kind,
        known_temporality,
        is_monotonic,
        _string(message.get("description"), "description"),
    )
    group = groups.get(metric)
    table = bounds.get(metric)
    if table is None:
        table = bounds[metric] = p.BoundsTable()
    for point in data_points:
        time = _unsigned(point.get("timeUnixNano"), "timeUnixNano")
        flags = _integer(point.get("flags"), "flags", 0, 2**32 - 1)
        value = _value(data, point, flags, table)
        if not time:
            rejections.add(p.NO_TIME, name)
        elif isinstance(value, str):
            rejections.add(value, name)
        else:
            _add(group, point, value, time, flags)


def _value(data: str, point: dict[str, Any], flags: int, table: p.BoundsTable) -> PointValue | str:
    if data == "gauge" or data == "sum":
        value = _double(point.get("asDouble"), "asDouble")
        if point.get("asInt") is not None:
            value += _integer(point.get("asInt"), "asInt")
        return p.number_value(value, flags)
    count = _unsigned(point.get("count"), "count")
    if data == "histogram":
        raw_bounds = tuple(
            _double(b, "explicitBounds") for b in _array(point.get("explicitBounds"), "bounds")
        )
        return p.histogram_point(
            count,
            _optional_double(point, "sum"),
            table.intern(raw_bounds),
            tuple(_unsigned(c, "bucketCounts") for c in _array(point.get("bucketCounts"), "c")),
            _optional_double(point, "min"),
            _optional_double(point, "max"),
            flags,
        )
    if data == "exponential_histogram":
        return p.exponential_point(
            count,
            _optional_double(point, "sum"),
            _integer(point.get("scale"), "scale", -(2**31), 2**31 - 1),
            _unsigned(point.get("zeroCount"), "zeroCount"),
            _buckets(point.get("positive")),
            _buckets(point.get("negative")),
            _double(point.get("zeroThreshold"), "zeroThreshold"),
            _optional_double(point, "min"),
            _optional_double(point, "max"),
            flags,
        )
    quantiles = [
        (_double(q.get("quantile"), "quantile"), _double(q.get("value"), "value"))
        for q in (_object(v, "quantileValues") for v in _array(point.get("quantileValues"), "q"))
    ]
    return p.summary_point(count, _double(point.get("sum"), "sum"), quantiles, flags)


def _buckets(value: Any) -> BucketRange:
    buckets = _object(value, "buckets")
    counts = tuple(_unsigned(c, "bucketCounts") for c in _array(buckets.get("bucketCounts"), "c"))
    return p.bucket_range(_integer(buckets.get("offset"), "offset", -(2**31), 2**31 - 1), counts)


def _add(
    group: MetricPoints, point: dict[str, Any], value: PointValue, time: int, flags: int
) -> None:
    index = len(group.series)
    series = INTERNER.intern_series(group.metric, _attributes(point.get("attributes")))
    start = _unsigned(point.get("startTimeUnixNano"), "startTimeUnixNano")
    group.append(series, value, time, start, flags)
    exemplars = _array(point.get("exemplars"), "exemplars")
    if exemplars:
        group.add_exemplars(index, tuple(_exemplar(_object(e, "exemplar")) for e in exemplars))


def _exemplar(found: dict[str, Any]) -> Exemplar:
    value = _double(found.get("asDouble"), "asDouble")
    if found.get("asInt") is not None:
        value += _integer(found.get("asInt"), "asInt")
    return Exemplar(
        value,
        _unsigned(found.get("timeUnixNano"), "timeUnixNano"),
        _hex_id(found.get("traceId"), "traceId"),
        _hex_id(found.get("spanId"), "spanId"),
        _attributes(found.get("filteredAttributes")),
    )
