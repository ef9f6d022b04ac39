"""`tenant_header` on the remote-write exporter: one request, one tenant, the right header.

Batches are stamped by `TenantStamp`, as an authenticated listener does (resource attribute
`tenant.id`, label `tenant`); a recording receiver checks that every request holds exactly one
tenant's series and carries that tenant in `X-Scope-OrgID`, and that each series' samples arrive
in order, with memory lanes, lanes on disk and lanes on an encrypted disk.
"""

from __future__ import annotations

import base64
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metricgate.exporters.prometheus_remote_write import (
    Encoder,
    RemoteWriteExporterConfig,
)
from metricgate.model import INTERNER, Batch, MetricKind, MetricPoints, sorted_attributes
from metricgate.tenants import TenantSplitter, TenantStamp
from tests.support.batches import metric, number_batch
from tests.support.poll import wait_until
from tests.support.remote_write import Receiver, Sample, decode_body, exporter, metric_value, serve

NS = 1_700_000_000_000_000_000
TENANTS = ["team-a", "team-b", "team-c"]


def stamped(tenant: str, step: int, series: int = 20, name: str = "g") -> Batch:
    batch = number_batch(
        {f"s{i}": float(step) for i in range(series)},
        name=name,
        kind=MetricKind.GAUGE,
        timestamp=NS + step * 1_000_000_000,
    )
    return TenantStamp(tenant).apply(batch)[0]


def labels_of(sample: Sample) -> dict[str, str]:
    return dict(sample[0])


def check_requests(receiver: Receiver, header: str = "X-Scope-OrgID") -> dict[str, list[Sample]]:
    """Every request holds one tenant's series and names it in `header`; samples per tenant."""
    per_tenant: dict[str, list[Sample]] = defaultdict(list)
    assert receiver.attempts
    for (_, samples), headers in zip(receiver.attempts, receiver.headers, strict=True):
        tenants = {labels_of(s).get("tenant") for s in samples}
        assert len(tenants) == 1, f"a request mixes tenants {tenants}"
        (tenant,) = tenants
        assert headers.get(header) == tenant
        per_tenant[str(tenant)].extend(samples)
    return per_tenant


def check_order(samples: list[Sample]) -> None:
    times: dict[tuple[tuple[str, str], ...], list[int]] = defaultdict(list)
    for labels, _, timestamp in samples:
        times[labels].append(timestamp)
    for series_times in times.values():
        assert series_times == sorted(series_times)
        assert len(series_times) == len(set(series_times))


def key_file(tmp_path: Path) -> str:
    path = tmp_path / "wal.key"
    path.write_bytes(base64.b64encode(os.urandom(32)))
    return str(path)


@pytest.mark.parametrize("storage", ["memory", "disk", "encrypted disk"])
async def test_each_request_holds_one_tenant_and_names_it(tmp_path: Path, storage: str) -> None:
    receiver = Receiver()
    overrides: dict[str, Any] = {
        "headers": {},
        "tenant_header": "X-Scope-OrgID",
        "shards": {"min": 4, "max": 4},
        "max_samples_per_send": 50,
    }
    if storage != "memory":
        overrides["sending_queue"] = {"storage": {"directory": str(tmp_path / "q")}}
    if storage == "encrypted disk":
        overrides["sending_queue"]["storage"]["encryption"] = {"key_file": key_file(tmp_path)}
    steps = 15
    async with serve(receiver) as port, exporter(port, **overrides) as (sending, host):
        for step in range(steps):
            for tenant in TENANTS:  # interleaved, as concurrent clients send
                await sending.export(stamped(tenant, step))
        total = steps * len(TENANTS) * 20
        await wait_until(lambda: len(receiver.accepted) == total)
        await wait_until(
            lambda: metric_value(host, "metricgate_exporter_sent_points_total") == total
        )
    per_tenant = check_requests(receiver)
    assert sorted(per_tenant) == TENANTS
    for samples in per_tenant.values():
        assert len(samples) == steps * 20
        check_order(samples)
    if storage == "encrypted disk":
        for segment in (tmp_path / "q").rglob("*.seg"):
            assert b"team-a" not in segment.read_bytes()


async def test_a_batch_holding_several_tenants_is_split_before_encoding() -> None:
    receiver = Receiver()
    mixed = Batch([g for tenant in TENANTS for g in stamped(tenant, 0).metrics])
    async with (
        serve(receiver) as port,
        exporter(port, headers={}, tenant_header={"name": "X-Tenant"}) as (sending, _),
    ):
        await sending.export(mixed)
        await wait_until(lambda: len(receiver.accepted) == 60)
    assert sorted(check_requests(receiver, "X-Tenant")) == TENANTS
    assert len(receiver.attempts) == 3


async def test_data_without_a_tenant_goes_without_the_header_or_as_the_default() -> None:
    plain = number_batch({"a": 1.0}, name="g", kind=MetricKind.GAUGE)
    for config, expected in (
        ({"tenant_header": "X-Scope-OrgID"}, None),
        ({"tenant_header": {"default_tenant": "anonymous"}}, "anonymous"),
    ):
        receiver = Receiver()
        async with serve(receiver) as port, exporter(port, headers={}, **config) as (sending, _):
            await sending.export(plain)
            await wait_until(lambda: len(receiver.accepted) == 1)  # noqa: B023
        assert receiver.headers[0].get("X-Scope-OrgID") == expected


async def test_a_tenant_value_no_header_can_carry_is_dropped_and_counted() -> None:
    base = metric("g", kind=MetricKind.GAUGE)
    resource = INTERNER.intern_resource(
        sorted_attributes({**dict(base.resource.attributes), "tenant.id": "team a\r\nX-Evil: 1"})
    )
    bad = INTERNER.intern_metric_like(base, resource=resource)
    group = MetricPoints(bad)
    group.append(INTERNER.intern_series(bad, (("k", "v"),)), 1.0, NS)
    receiver = Receiver()
    async with (
        serve(receiver) as port,
        exporter(port, headers={}, tenant_header="X-Scope-OrgID") as (sending, host),
    ):
        await sending.export(Batch([group, *stamped("team-a", 0, series=1).metrics]))
        await wait_until(lambda: len(receiver.accepted) == 1)
        dropped = metric_value(
            host, "metricgate_exporter_dropped_points_total", reason="invalid_tenant"
        )
    assert dropped == 1
    assert receiver.headers[0]["X-Scope-OrgID"] == "team-a"


async def test_staleness_markers_go_out_under_their_tenant() -> None:
    receiver = Receiver()
    async with (
        serve(receiver) as port,
        exporter(port, headers={}, tenant_header="X-Scope-OrgID", metric_expiration=0.05) as (
            sending,
            _,
        ),
    ):
        for tenant in TENANTS:
            await sending.export(stamped(tenant, 0, series=3))
        await wait_until(lambda: sum(s[1] == "stale" for s in receiver.accepted) == 9, timeout=20)
    per_tenant = check_requests(receiver)
    for tenant in TENANTS:
        assert sum(s[1] == "stale" for s in per_tenant[tenant]) == 3


@settings(max_examples=60, deadline=None)
@given(
    batches=st.lists(
        st.lists(st.tuples(st.sampled_from([*TENANTS, ""]), st.integers(0, 5)), max_size=6),
        min_size=1,
        max_size=6,
    ),
    shards=st.integers(1, 4),
)
def test_fragments_never_mix_tenants(batches: list[list[tuple[str, int]]], shards: int) -> None:
    config = RemoteWriteExporterConfig(endpoint="http://x/api/v1/write")
    encoder = Encoder(
        config.translator(), target_info=True, max_samples=7, tenants=TenantSplitter()
    )
    for step, groups in enumerate(batches):
        metrics = []
        for tenant, series in groups:
            batch = number_batch(
                {f"s{i}": 1.0 for i in range(series)}, name=f"m{series}", timestamp=NS + step
            )
            metrics += (TenantStamp(tenant).apply(batch)[0] if tenant else batch).metrics
        per_shard, _ = encoder.encode(Batch(metrics), shards, 0.0)
        for fragments in per_shard:
            for fragment in fragments:
                request = decode_body(fragment.data)
                labels = [{x.name: x.value for x in ts.labels} for ts in request.timeseries]
                # Points carry the tenant label; target_info the resource's tenant.id.
                tenants = {x.get("tenant", x.get("tenant_id", "")) for x in labels}
                assert tenants == {fragment.tenant}


@pytest.mark.parametrize(
    ("settings_", "message"),
    [
        (
            {"headers": {"x-scope-orgid": "a"}, "tenant_header": "X-Scope-OrgID"},
            "headers.x-scope-orgid and tenant_header both set X-Scope-OrgID",
        ),
        ({"tenant_header": "Bad Header"}, "expected an HTTP header name"),
        ({"tenant_header": "Content-Type"}, "not a header a tenant can go in"),
        ({"tenant_header": {"default_tenant": ".."}}, "expected a tenant id"),
    ],
)
def test_tenant_header_config_errors(settings_: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RemoteWriteExporterConfig(endpoint="http://x/api/v1/write", **settings_)


def test_the_same_labels_under_two_tenants_are_two_series_not_duplicates() -> None:
    """Without the tenant label (a stamp with `label: ""`), two tenants may write the same name
    and labels: they go to two tenants, so neither is a duplicate of the other."""
    config = RemoteWriteExporterConfig(endpoint="http://x/api/v1/write")
    encoder = Encoder(config.translator(), target_info=False, tenants=TenantSplitter())
    groups = []
    for tenant in ("team-a", "team-b"):
        batch = number_batch({"s": 1.0}, name="same", kind=MetricKind.GAUGE)
        groups += TenantStamp(tenant, label="").apply(batch)[0].metrics
    per_shard, drops = encoder.encode(Batch(groups), 1, 0.0)
    assert not drops
    assert sorted(f.tenant for f in per_shard[0]) == ["team-a", "team-b"]
    # Without tenant_header both would be one series in one backend: the second is refused.
    shared = Encoder(config.translator(), target_info=False)
    _, drops = shared.encode(Batch(groups), 1, 0.0)
    assert drops == {"duplicate_series": 1}
