"""Tenant stamping: the tenant replaces client values, forged series are counted (once, when first
seen), values untouched."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from metricgate.model import INTERNER, Batch, MetricPoints, sorted_attributes
from metricgate.tenants import TenantStamp
from tests.support.batches import metric

TENANTS = st.sampled_from(["team-a", "team-b", "x"])


@given(
    tenant=TENANTS,
    resource_tenant=st.none() | TENANTS,
    points=st.lists(
        st.tuples(st.none() | TENANTS, st.sampled_from(["a", "b", "c"]), st.floats(0, 10)),
        max_size=8,
    ),
)
def test_stamp_replaces_and_counts(
    tenant: str, resource_tenant: str | None, points: list[tuple[str | None, str, float]]
) -> None:
    base = metric("agent_calls")
    resource_attrs = dict(base.resource.attributes)
    if resource_tenant is not None:
        resource_attrs["tenant.id"] = resource_tenant
    resource = INTERNER.intern_resource(sorted_attributes(resource_attrs))
    m = INTERNER.intern_metric_like(base, resource=resource)
    group = MetricPoints(m)
    for label, key, value in points:
        attrs: dict[str, object] = {"k": key}
        if label is not None:
            attrs["tenant"] = label
        group.append(INTERNER.intern_series(m, sorted_attributes(attrs)), value, 1)  # type: ignore[arg-type]
    stamp = TenantStamp(tenant)
    stamped, forged = stamp.apply(Batch([group]))

    out = stamped.metrics[0]
    assert out.metric.resource.get("tenant.id") == tenant
    assert out.metric.resource.get("service.name") == "svc"
    assert out.values is group.values and len(out.series) == len(points)
    for (_, key, _), series in zip(points, out.series, strict=True):
        assert dict(series.attributes) == {"k": key, "tenant": tenant}
        assert series.metric is out.metric
    expected = len(
        {
            (label, key)
            for label, key, _ in points
            if (label is not None and label != tenant)
            or (resource_tenant is not None and resource_tenant != tenant)
        }
    )
    assert forged == expected
    assert stamp.apply(Batch([group]))[1] == 0  # counted when first seen
    again, forged_again = stamp.apply(stamped)  # idempotent
    assert forged_again == 0
    assert again.metrics[0].series == out.series


def test_label_can_be_turned_off() -> None:
    m = metric("agent_calls")
    group = MetricPoints(m)
    group.append(INTERNER.intern_series(m, (("tenant", "evil"),)), 1.0, 1)
    stamped, forged = TenantStamp("team-a", label="").apply(Batch([group]))
    assert forged == 0  # only the resource attribute is the gateway's
    assert dict(stamped.metrics[0].series[0].attributes) == {"tenant": "evil"}
    assert stamped.metrics[0].metric.resource.get("tenant.id") == "team-a"


@given(
    resource_tenant=st.none() | TENANTS,
    labels=st.lists(st.none() | TENANTS, max_size=6),
)
def test_the_anonymous_stamp_takes_a_client_tenant_off_the_resource_only(
    resource_tenant: str | None, labels: list[str | None]
) -> None:
    base = metric("agent_calls")
    resource_attrs = dict(base.resource.attributes)
    if resource_tenant is not None:
        resource_attrs["tenant.id"] = resource_tenant
    resource = INTERNER.intern_resource(sorted_attributes(resource_attrs))
    m = INTERNER.intern_metric_like(base, resource=resource)
    group = MetricPoints(m)
    for index, label in enumerate(labels):
        attrs: dict[str, object] = {"k": str(index)}
        if label is not None:
            attrs["tenant"] = label
        group.append(INTERNER.intern_series(m, sorted_attributes(attrs)), float(index), 1)  # type: ignore[arg-type]
    stamp = TenantStamp.anonymous()
    stamped, forged = stamp.apply(Batch([group]))

    out = stamped.metrics[0]
    assert out.metric.resource.get("tenant.id") is None
    assert out.metric.resource.get("service.name") == "svc"
    if resource_tenant is None:
        assert out is group  # nothing to take off: the batch passes as it is
    assert [dict(s.attributes) for s in out.series] == [dict(s.attributes) for s in group.series]
    assert all(series.metric is out.metric for series in out.series)
    assert forged == (len(labels) if resource_tenant is not None else 0)
