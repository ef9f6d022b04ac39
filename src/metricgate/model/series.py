"""Identity of metric streams: resources, scopes, metric descriptors and series.

Every object here is immutable and *interned*: building the same resource, scope, metric or series
twice returns the same Python object, so components can key their per-series caches on it and a
dictionary lookup costs one identity comparison. Equality and hashing are still by value (the hash
is computed once, at construction), so two objects that escaped interning (for example built in two
worker processes) still compare equal.

Invariant: never mutate these objects, and never build them without the `intern_*` functions; caches
all over the pipeline rely on identity and on the precomputed hash.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final, TypeVar

from metricgate.model.caches import register

AttributeValue = str | bool | int | float | tuple["AttributeValue", ...] | None
Attributes = tuple[tuple[str, AttributeValue], ...]
"""Attribute pairs sorted by key, keys unique."""


_T = TypeVar("_T")


class MetricKind(IntEnum):
    """The OTLP data kinds; the enum values are the OTLP `Metric.data` field numbers."""

    GAUGE = 5
    SUM = 7
    HISTOGRAM = 9
    EXPONENTIAL_HISTOGRAM = 10
    SUMMARY = 11


class Temporality(IntEnum):
    """OTLP `AggregationTemporality`."""

    UNSPECIFIED = 0
    DELTA = 1
    CUMULATIVE = 2


class Resource:
    """The entity that produced the telemetry (OTLP `Resource`): its attributes, sorted by key."""

    __slots__ = ("_hash", "attributes", "schema_url")

    def __init__(self, attributes: Attributes, schema_url: str = "") -> None:
        self.attributes: Final = attributes
        self.schema_url: Final = schema_url
        self._hash: Final = hash((attributes, schema_url))

    def get(self, key: str, default: AttributeValue = None) -> AttributeValue:
        for k, v in self.attributes:
            if k == key:
                return v
        return default

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if not isinstance(other, Resource):
            return NotImplemented
        return self._hash == other._hash and (self.attributes, self.schema_url) == (
            other.attributes,
            other.schema_url,
        )

    def __repr__(self) -> str:
        return f"Resource({dict(self.attributes)!r})"


class Scope:
    """The instrumentation scope (library) that recorded the metric."""

    __slots__ = ("_hash", "attributes", "name", "schema_url", "version")

    def __init__(
        self, name: str, version: str = "", attributes: Attributes = (), schema_url: str = ""
    ) -> None:
        self.name: Final = name
        self.version: Final = version
        self.attributes: Final = attributes
        self.schema_url: Final = schema_url
        self._hash: Final = hash((name, version, attributes, schema_url))

    def _key(self) -> tuple[str, str, Attributes, str]:
        return (self.name, self.version, self.attributes, self.schema_url)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if not isinstance(other, Scope):
            return NotImplemented
        return self._hash == other._hash and self._key() == other._key()

    def __repr__(self) -> str:
        return f"Scope({self.name!r}, {self.version!r})"


class Metric:
    """A metric stream's descriptor: who produced it, its name, unit and kind.

    `temporality` and `monotonic` only mean something for sums and histograms; gauges and
    summaries carry UNSPECIFIED and False.

    `native_prometheus` marks data that is already in Prometheus form (from remote-write or
    Pushgateway receivers, or rewritten by the relabel processor): `name` is the final Prometheus
    metric name (histograms and summaries: the base name without `_bucket`/`_sum`/`_count`), and
    the series attributes are the complete, final label set as strings (`job` and `instance`
    included when present). Prometheus translation passes such series through unchanged.
    """

    __slots__ = (
        "_hash",
        "description",
        "kind",
        "monotonic",
        "name",
        "native_prometheus",
        "resource",
        "scope",
        "temporality",
        "unit",
    )

    def __init__(
        self,
        resource: Resource,
        scope: Scope,
        name: str,
        unit: str,
        kind: MetricKind,
        temporality: Temporality = Temporality.UNSPECIFIED,
        monotonic: bool = False,
        description: str = "",
        native_prometheus: bool = False,
    ) -> None:
        self.resource: Final = resource
        self.scope: Final = scope
        self.name: Final = name
        self.unit: Final = unit
        self.kind: Final = kind
        self.temporality: Final = temporality
        self.monotonic: Final = monotonic
        self.description: Final = description
        self.native_prometheus: Final = native_prometheus
        self._hash: Final = hash(self._key())

    def _key(self) -> tuple[object, ...]:
        return (
            self.resource,
            self.scope,
            self.name,
            self.unit,
            self.kind,
            self.temporality,
            self.monotonic,
            self.description,
            self.native_prometheus,
        )

    @property
    def is_counter(self) -> bool:
        """True for monotonic sums, which Prometheus calls counters."""
        return self.kind is MetricKind.SUM and self.monotonic

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if not isinstance(other, Metric):
            return NotImplemented
        return self._hash == other._hash and self._key() == other._key()

    def __repr__(self) -> str:
        return f"Metric({self.name!r}, {self.kind.name}, unit={self.unit!r})"


class Series:
    """One time series: a metric descriptor plus the data point's attribute set.

    `label_names`, when a producer gives it, is the attribute keys in order, from a producer
    that knows every value is a non-empty string (data that came in as Prometheus labels): the
    translator then takes the attributes as labels without looking at each. It is a hint, not
    identity: equality and hash ignore it.
    """

    __slots__ = ("_hash", "attributes", "label_names", "metric")

    def __init__(
        self,
        metric: Metric,
        attributes: Attributes,
        label_names: tuple[str, ...] | None = None,
    ) -> None:
        self.metric: Final = metric
        self.attributes: Final = attributes
        self.label_names: Final = label_names
        self._hash: Final = hash((metric._hash, attributes))

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if not isinstance(other, Series):
            return NotImplemented
        return (
            self._hash == other._hash
            and self.metric == other.metric
            and self.attributes == other.attributes
        )

    def __repr__(self) -> str:
        return f"Series({self.metric.name!r}, {dict(self.attributes)!r})"


DEFAULT_INTERNER_SIZE: Final = 1_000_000
"""Entries of the process-wide interner (resources, scopes, metrics and series together)."""


class Interner:
    """A bounded table that returns one canonical object per distinct value.

    The table forgets everything when an insert finds `max_size` entries in it, and whenever the
    memory limiter releases caches (`metricgate.model.caches`); objects handed out before stay
    valid (equality is by value), they are simply no longer shared with new ones. Receivers keep
    their own decoding caches in front of this, so a steady stream rarely reaches it: it is
    consulted once per new series, and holds every series seen (admitted downstream or not) until
    it forgets them, about 0.1 KiB each beyond what the decoders' caches hold. A cache that
    already hands out one object per series (the OTLP protobuf and remote-write decoders', the
    relabel verdicts) skips it: interning would only add that cost.
    """

    __slots__ = ("__weakref__", "_table", "max_size")

    def __init__(self, max_size: int = DEFAULT_INTERNER_SIZE) -> None:
        self._table: dict[object, object] = {}
        self.max_size = max_size
        register(self)

    def intern_resource(self, attributes: Attributes, schema_url: str = "") -> Resource:
        return self._intern(Resource(attributes, schema_url))

    def intern_scope(
        self, name: str, version: str = "", attributes: Attributes = (), schema_url: str = ""
    ) -> Scope:
        return self._intern(Scope(name, version, attributes, schema_url))

    def intern_metric(
        self,
        resource: Resource,
        scope: Scope,
        name: str,
        unit: str,
        kind: MetricKind,
        temporality: Temporality = Temporality.UNSPECIFIED,
        monotonic: bool = False,
        description: str = "",
        native_prometheus: bool = False,
    ) -> Metric:
        return self._intern(
            Metric(
                resource,
                scope,
                name,
                unit,
                kind,
                temporality,
                monotonic,
                description,
                native_prometheus,
            )
        )

    def intern_metric_like(
        self,
        metric: Metric,
        *,
        resource: Resource | None = None,
        temporality: Temporality | None = None,
    ) -> Metric:
        """`metric` with its resource and/or temporality replaced, interned."""
        return self.intern_metric(
            metric.resource if resource is None else resource,
            metric.scope,
            metric.name,
            metric.unit,
            metric.kind,
            metric.temporality if temporality is None else temporality,
            metric.monotonic,
            metric.description,
            metric.native_prometheus,
        )

    def intern_series(self, metric: Metric, attributes: Attributes) -> Series:
        return self._intern(Series(metric, attributes))

    def _intern(self, obj: _T) -> _T:
        table = self._table
        if len(table) >= self.max_size:
            table.clear()
        return table.setdefault(obj, obj)  # type: ignore[return-value]

    def release(self) -> int:
        """Forget every entry (see the class docstring); the number forgotten."""
        count = len(self._table)
        self._table.clear()
        return count

    def __len__(self) -> int:
        return len(self._table)


INTERNER: Final = Interner()
"""The process-wide interner: equal series from two receivers become one object."""


def sorted_attributes(pairs: dict[str, AttributeValue]) -> Attributes:
    """Attributes in canonical form: sorted by key."""
    return tuple(sorted(pairs.items()))
