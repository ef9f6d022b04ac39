"""The `pushgateway` receiver, driven by the real `prometheus_client` push functions."""

from __future__ import annotations

import asyncio
import gzip
from urllib.error import HTTPError

import pytest
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Summary,
    delete_from_gateway,
    push_to_gateway,
    pushadd_to_gateway,
)

from metricgate.model import FLAG_NO_RECORDED_VALUE, HistogramPoint, MetricKind
from tests.support.pushgateway import Gateway


def batch_registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    done = Counter("jobs_done", "Jobs done.", ["queue", "job"], registry=registry)
    done.labels("q1", "pushed-job-label").inc(3)
    Gauge("last_success_unixtime", "Last success.", registry=registry).set(1234.5)
    latency = Histogram("latency_seconds", "Latency.", buckets=(0.1, 1.0), registry=registry)
    for value in (0.05, 0.5, 5.0):
        latency.observe(value)
    Summary("size_bytes", "Sizes.", registry=registry).observe(42)
    return registry


async def test_push_to_gateway_reaches_the_exporter_page(gateway: Gateway) -> None:
    await asyncio.to_thread(
        push_to_gateway,
        gateway.address,
        job="batch",
        registry=batch_registry(),
        grouping_key={"instance": "host-1", "path": "/var/tmp"},
    )
    page = await gateway.page("size_bytes_count")
    labels = 'instance="host-1",job="batch",path="/var/tmp"'
    # The grouping key's job overrides the pushed `job` label; counters keep `_total` once.
    assert "# TYPE jobs_done_total counter" in page
    assert f'jobs_done_total{{{labels},queue="q1"}} 3' in page
    assert "jobs_done_total_total" not in page
    assert f"last_success_unixtime{{{labels}}} 1234.5" in page
    assert "# TYPE latency_seconds histogram" in page
    assert f'latency_seconds_bucket{{{labels},le="0.1"}} 1' in page
    assert f'latency_seconds_bucket{{{labels},le="1"}} 2' in page
    assert f'latency_seconds_bucket{{{labels},le="+Inf"}} 3' in page
    assert f"latency_seconds_count{{{labels}}} 3" in page
    assert "# TYPE size_bytes summary" in page and f"size_bytes_sum{{{labels}}} 42" in page
    assert f"push_time_seconds{{{labels}}}" in page
    kinds = {g.metric.name: g.metric.kind for b in gateway.capture.batches for g in b}
    assert kinds["jobs_done_total"] is MetricKind.SUM
    assert kinds["latency_seconds"] is MetricKind.HISTOGRAM
    [point] = [
        v
        for b in gateway.capture.batches
        for g in b
        for v in g.values
        if g.metric.name == "latency_seconds"
    ]
    assert isinstance(point, HistogramPoint) and point.bucket_counts == (1, 1, 1)


async def test_put_replaces_the_group_and_post_only_same_named_metrics(gateway: Gateway) -> None:
    first = CollectorRegistry()
    Gauge("a", "A.", registry=first).set(1)
    Gauge("b", "B.", ["k"], registry=first).labels("x").set(2)
    await asyncio.to_thread(push_to_gateway, gateway.address, job="j", registry=first)
    await gateway.page('b{job="j",k="x"} 2')

    second = CollectorRegistry()
    Gauge("b", "B.", ["k"], registry=second).labels("y").set(3)
    await asyncio.to_thread(pushadd_to_gateway, gateway.address, job="j", registry=second)
    page = await gateway.page('b{job="j",k="y"} 3', absent='k="x"')
    assert 'a{job="j"} 1' in page and 'k="x"' not in page

    third = CollectorRegistry()
    Gauge("c", "C.", registry=third).set(4)
    await asyncio.to_thread(push_to_gateway, gateway.address, job="j", registry=third)
    page = await gateway.page('c{job="j"} 4', absent='a{job="j"}')
    assert 'a{job="j"}' not in page and "b{" not in page
    stale = [
        g.metric.name
        for b in gateway.capture.batches
        for g in b
        if g.flags and g.flags[0] & FLAG_NO_RECORDED_VALUE
    ]
    assert sorted(stale) == ["a", "b", "b"]


async def test_delete_from_gateway_ends_the_group(gateway: Gateway) -> None:
    registry = CollectorRegistry()
    Gauge("doomed", "D.", registry=registry).set(1)
    other = CollectorRegistry()
    Gauge("kept", "K.", registry=other).set(1)
    await asyncio.to_thread(push_to_gateway, gateway.address, job="gone", registry=registry)
    await asyncio.to_thread(push_to_gateway, gateway.address, job="stays", registry=other)
    await gateway.page("doomed{")
    await asyncio.to_thread(delete_from_gateway, gateway.address, job="gone")
    page = await gateway.page('kept{job="stays"}', absent="doomed")
    assert "doomed" not in page and 'push_time_seconds{job="gone"}' not in page
    assert (await gateway.request("DELETE", "/metrics/job/never-pushed"))[0] == 202


async def test_status_codes_follow_the_pushgateway(gateway: Gateway) -> None:
    assert await gateway.request("PUT", "/metrics/job/x", b"up 1\n") == (200, "")
    assert await gateway.request("POST", "/metrics/job/x", b"up 2\n") == (200, "")
    status, _ = await gateway.request("GET", "/metrics/job/x")
    assert status == 405
    status, text = await gateway.request("PUT", "/metrics/job/x", b"up 1 1700000000000\n")
    assert status == 400 and "line 1" in text and "timestamps" in text
    status, text = await gateway.request(
        "PUT", "/metrics/job/x", b"up 1\n", {"Content-Encoding": "br"}
    )
    assert status == 415
    status, _ = await gateway.request(
        "PUT",
        "/metrics/job/x",
        b"",
        {"Content-Type": "application/vnd.google.protobuf; proto=other.Msg; encoding=delimited"},
    )
    assert status == 415
    assert (await gateway.request("PUT", "/metrics/job/x", b"x" * 70_000))[0] == 413
    zipped = gzip.compress(b"zipped 7\n")
    status, _ = await gateway.request("PUT", "/metrics/job/z", zipped, {"Content-Encoding": "gzip"})
    assert status == 200
    assert 'zipped{job="z"} 7' in await gateway.page('zipped{job="z"} 7')


@pytest.mark.parametrize(
    ("path", "needle"),
    [
        ("/metrics/job", "expected /metrics/job"),
        ("/metrics/instance/x", "must start with job"),
        ("/metrics/instance/x/job/y", "must start with job"),
        ("/metrics/job/x/bad-name/y", "invalid label name"),
        ("/metrics/job@base64/=", "must not be empty"),
        ("/metrics/job/x/a/1/a/2", "twice"),
    ],
)
async def test_bad_grouping_keys_get_400(gateway: Gateway, path: str, needle: str) -> None:
    status, text = await gateway.request("PUT", path, b"up 1\n")
    assert status == 400 and needle in text


async def test_base64_and_percent_encoded_values(gateway: Gateway) -> None:
    assert (
        await gateway.request(
            "PUT", "/metrics/job/titan/name@base64/zqDPgc6_zrzOt864zrXPjc-C/e@base64/=", b"up 1\n"
        )
    )[0] == 200
    assert (await gateway.request("PUT", "/metrics/job/x%2Fy", b"up 2\n"))[0] == 200
    page = await gateway.page('up{job="x/y"} 2')
    assert 'up{job="titan",name="Προμηθεύς"} 1' in page
    assert 'up{job="x/y"} 2' in page


async def test_bad_text_gets_400_with_the_line_and_a_good_push_still_works(
    gateway: Gateway,
) -> None:
    body = b'# TYPE up gauge\nup 1\nup{a="b" 2\n'
    status, text = await gateway.request("PUT", "/metrics/job/x", body)
    assert status == 400 and "line 3" in text
    assert (await gateway.request("PUT", "/metrics/job/x", b"up 3\n"))[0] == 200
    assert 'up{job="x"} 3' in await gateway.page('up{job="x"} 3')


async def test_a_family_held_with_another_type_elsewhere_is_refused(gateway: Gateway) -> None:
    assert (await gateway.request("PUT", "/metrics/job/a", b"# TYPE m gauge\nm 1\n"))[0] == 200
    status, text = await gateway.request("PUT", "/metrics/job/b", b"# TYPE m counter\nm 1\n")
    assert status == 400 and "holds it as gauge" in text
    status, text = await gateway.request("PUT", "/metrics/job/b", b"push_time_seconds 1\n")
    assert status == 400 and "reserved" in text


async def test_back_pressure_leaves_the_group_unchanged(gateway: Gateway) -> None:
    from metricgate.errors import QueueFullError

    assert (await gateway.request("PUT", "/metrics/job/x", b"keep 1\n"))[0] == 200
    server = gateway.receiver._server
    assert server is not None
    deliver = server.core.consumer

    class Full:
        async def consume(self, batch: object) -> None:
            raise QueueFullError("full", 2.0)

    server.core.consumer = Full()
    status, _ = await gateway.request("PUT", "/metrics/job/x", b"other 1\n")
    assert status == 429
    server.core.consumer = deliver
    families = gateway.receiver.store.groups[("", (("job", "x"),))].families
    assert set(families) == {"keep", "push_time_seconds"}


async def test_prometheus_client_sees_a_refused_push_as_an_error(gateway: Gateway) -> None:
    registry = CollectorRegistry()
    Gauge("ok", "O.", registry=registry).set(1)
    with pytest.raises(HTTPError) as caught:
        await asyncio.to_thread(
            push_to_gateway, gateway.address, job="x", registry=registry, grouping_key={"a-b": "c"}
        )
    assert caught.value.code == 400


async def test_created_gauges_become_start_times(gateway: Gateway) -> None:
    await asyncio.to_thread(push_to_gateway, gateway.address, job="c", registry=batch_registry())
    page = await gateway.page("size_bytes_count")
    assert "_created" not in page
    groups = {g.metric.name: g for b in gateway.capture.batches for g in b}
    assert "jobs_done_created" not in groups
    assert all(start > 1e18 for start in groups["jobs_done_total"].start_timestamps)
    assert all(start > 1e18 for start in groups["latency_seconds"].start_timestamps)


@pytest.mark.parametrize(
    ("body", "line", "needle"),
    [
        # Non-finite or negative counts are refused with the line, never a 500 (issue 11, 2).
        ("# TYPE s summary\ns_sum 1\ns_count +Inf\n", 3, "count inf"),
        ("# TYPE s summary\ns_sum 1\ns_count NaN\n", 3, "count nan"),
        ("# TYPE s summary\ns_sum 1\ns_count 1e309\n", 3, "out of range"),
        ('# TYPE h histogram\nh_bucket{le="+Inf"} +Inf\nh_count 1\n', 2, "bucket count inf"),
        ('# TYPE h histogram\nh_bucket{le="1"} NaN\nh_count 1\n', 2, "bucket count nan"),
        ('# TYPE h histogram\nh_bucket{le="+Inf"} 1\nh_count NaN\n', 3, "count nan"),
        ("# TYPE h histogram\nh_count -1\n", 2, "count -1.0"),
        ('# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\n', 3, "not cumulative"),
        ('# TYPE h histogram\nh_bucket{le="x"} 2\n', 2, "le='x' is not a number"),
        # Quantiles outside [0, 1] are refused, as the OTLP receiver refuses them (issue 11, 4).
        ('# TYPE s summary\ns{quantile="2"} 1\n', 2, "outside [0, 1]"),
        ('# TYPE s summary\ns{quantile="NaN"} 1\n', 2, "outside [0, 1]"),
        ('# TYPE s summary\ns{quantile="-0.5"} 1\n', 2, "outside [0, 1]"),
        ("up 1\nup 2\n", 2, "repeated"),
    ],
)
async def test_odd_values_get_400_with_the_line(
    gateway: Gateway, body: str, line: int, needle: str
) -> None:
    status, text = await gateway.request("PUT", "/metrics/job/odd", body.encode())
    assert status == 400, text
    assert f"line {line}:" in text and needle in text
    assert (await gateway.request("PUT", "/metrics/job/odd", b"up 1\n"))[0] == 200


async def test_summaries_at_the_edges_are_accepted(gateway: Gateway) -> None:
    body = (
        b"# TYPE s summary\n"
        b's{quantile="0"} -3\ns{quantile="1"} NaN\ns_sum -3\ns_count 0\n'
        b"# TYPE h histogram\nh_sum 0\nh_count 0\n"
    )
    assert (await gateway.request("PUT", "/metrics/job/edge", body))[0] == 200
    page = await gateway.page('s_sum{job="edge"} -3')
    # Negative summary values are legal in OTLP and in the text format: kept as pushed.
    assert 's_sum{job="edge"} -3' in page and ",quantile=" in page and "} -3\n" in page


async def test_an_empty_grouping_value_means_no_label(gateway: Gateway) -> None:
    # prom-client sends `groupings: {instance: ''}` this way; the Pushgateway takes it.
    assert (await gateway.request("PUT", "/metrics/job/x/instance/", b"up 5\n"))[0] == 200
    assert (await gateway.request("PUT", "/metrics/job/y/", b"up 6\n"))[0] == 200
    page = await gateway.page('up{job="y"} 6')
    assert 'up{job="x"} 5' in page
    groups = gateway.receiver.store.groups
    assert ("job", "x") in dict.fromkeys(pair for _, key in groups for pair in key)


async def test_delimited_protobuf_push(gateway: Gateway) -> None:
    from metricgate.wire.exposition.schema import CONTENT_TYPE, MetricFamily

    family = MetricFamily(name="proto_jobs_total", help="Jobs.", type=0)
    metric = family.metric.add()
    metric.label.add(name="queue", value="q")
    metric.counter.value = 4
    metric.counter.created_timestamp.seconds = 1_700_000_000
    histogram = MetricFamily(name="proto_latency_seconds", type=4)
    point = histogram.metric.add().histogram
    point.sample_count, point.sample_sum = 3, 1.5
    point.bucket.add(upper_bound=0.5, cumulative_count=1)
    point.bucket.add(upper_bound=1, cumulative_count=2)
    body = b""
    for message in (family, histogram):
        raw = message.SerializeToString()
        body += bytes([len(raw)]) + raw
    status, text = await gateway.request(
        "PUT", "/metrics/job/proto", body, {"Content-Type": CONTENT_TYPE}
    )
    assert status == 200, text
    page = await gateway.page("proto_latency_seconds_count")
    assert 'proto_jobs_total{job="proto",queue="q"} 4' in page
    assert 'proto_latency_seconds_bucket{job="proto",le="+Inf"} 3' in page
    groups = {g.metric.name: g for b in gateway.capture.batches for g in b}
    assert groups["proto_jobs_total"].start_timestamps == [1_700_000_000 * 10**9]
    status, text = await gateway.request(
        "PUT", "/metrics/job/proto", body[:-3], {"Content-Type": CONTENT_TYPE}
    )
    assert status == 400 and "message 2: message is cut short" in text
