"""The protobuf decoder stamping a tenant while decoding: the same batch `TenantStamp.apply` makes
of the unstamped decode, forged series counted once, and no mixing between tenants or with
unstamped requests through the shared caches."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.metrics.v1 import metrics_pb2 as pb

from metricgate.model import Batch
from metricgate.tenants import TenantStamp
from metricgate.wire.otlp.decode import ProtobufDecoder
from tests.receivers.otlp_data import T0, gauge, number, request, sum_metric
from tests.support.otlp_points import number_data_points

TENANTS = st.sampled_from(["team-a", "team-b"])


def groups(batch: Batch) -> list[tuple[object, ...]]:
    return [
        (group.metric, tuple(group.series), tuple(map(repr, group.values)), tuple(group.flags))
        for group in batch
    ]


def with_tenant(point: pb.NumberDataPoint, tenant: str | None) -> pb.NumberDataPoint:
    if tenant is not None:
        point.attributes.add(key="tenant").value.string_value = tenant
    return point


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    points=st.lists(st.tuples(number_data_points, st.none() | TENANTS), min_size=1, max_size=6),
    resource_tenant=st.none() | TENANTS,
    tenant=TENANTS,
)
def test_stamping_while_decoding_is_stamping_afterwards(
    points: list[tuple[pb.NumberDataPoint, str | None]],
    resource_tenant: str | None,
    tenant: str,
) -> None:
    resource: dict[str, object] = {"service.name": "svc"}
    if resource_tenant is not None:
        resource["tenant.id"] = resource_tenant
    body = request(
        sum_metric("m", *(with_tenant(p, t) for p, t in points)), resource=resource
    ).SerializeToString()
    stamp = TenantStamp(tenant)
    expected, forged = stamp.apply(ProtobufDecoder().decode(body).batch)
    decoder = ProtobufDecoder()
    plain = groups(decoder.decode(body).batch)
    for round_no in range(2):  # cold caches, then warm
        result = decoder.decode(body, TenantStamp(tenant))
        assert result.stamped
        assert groups(result.batch) == groups(expected)
        assert result.forged == (forged if round_no == 0 else 0)
    assert groups(decoder.decode(body).batch) == plain  # unstamped requests stay unstamped
    other = "team-b" if tenant == "team-a" else "team-a"
    crossed = decoder.decode(body, TenantStamp(other)).batch
    assert {g.metric.resource.get("tenant.id") for g in crossed} == {other}


def test_an_open_request_with_the_stamped_resource_is_not_stamped() -> None:
    # A client of an open listener sends the resource a tenant's requests get after stamping.
    stamped_resource = {"service.name": "svc", "tenant.id": "team-a"}
    body = request(gauge("g", number(1.0, {"k": "v"})), resource=stamped_resource)
    decoder = ProtobufDecoder()
    tenant_batch = decoder.decode(body.SerializeToString(), TenantStamp("team-a")).batch
    open_batch = decoder.decode(body.SerializeToString()).batch
    [tenant_series] = tenant_batch.metrics[0].series
    [open_series] = open_batch.metrics[0].series
    assert dict(tenant_series.attributes) == {"k": "v", "tenant": "team-a"}
    assert dict(open_series.attributes) == {"k": "v"}
    assert tenant_series.metric.resource is open_series.metric.resource


def test_forged_series_are_counted_when_first_seen() -> None:
    forged = pb.NumberDataPoint(as_double=1.0, time_unix_nano=T0)
    forged.attributes.add(key="tenant").value.string_value = "team-b"
    honest = pb.NumberDataPoint(as_double=1.0, time_unix_nano=T0)
    honest.attributes.add(key="k").value.string_value = "v"
    body = request(sum_metric("m", forged, honest)).SerializeToString()
    decoder = ProtobufDecoder()
    assert decoder.decode(body, TenantStamp("team-a")).forged == 1
    assert decoder.decode(body, TenantStamp("team-a")).forged == 0
    assert decoder.decode(body, TenantStamp("team-b")).forged == 0


def test_negative_zero_keeps_its_sign_cold_and_warm() -> None:
    # `as_double + as_int` made the first decode of -0.0 a 0.0, the cached one -0.0.
    body = request(sum_metric("m", number(-0.0, {"k": "v"}))).SerializeToString()
    decoder = ProtobufDecoder()
    for _ in range(2):
        [value] = decoder.decode(body).batch.metrics[0].values
        assert repr(value) == "-0.0"
