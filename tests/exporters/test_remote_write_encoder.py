"""The remote-write encoder: bytes identical to protobuf's, labels, kinds, deltas, staleness."""

from __future__ import annotations

import struct

from metricgate.exporters.prometheus_remote_write import Encoder
from metricgate.model import (
    FLAG_NO_RECORDED_VALUE,
    INTERNER,
    Batch,
    BucketRange,
    ExponentialHistogramPoint,
    HistogramPoint,
    MetricKind,
    MetricPoints,
    SummaryPoint,
    Temporality,
)
from metricgate.translate import PrometheusTranslator
from metricgate.wire.remotewrite import schema
from metricgate.wire.remotewrite.encode import EncodedSeries, label_block
from tests.support.batches import metric, number_batch
from tests.support.remote_write import (
    bounds_batch,
    decode_body,
    encoder,
    fragments_body,
    samples_of,
)

NS = 1_700_000_000_000_000_000
MS = NS // 1_000_000
BASE = (("job", "svc"), ("otel_scope_name", "test.scope"), ("otel_scope_version", "1.0"))


def labels(name: str, *extra: tuple[str, str], k: str | None = None) -> tuple[tuple[str, str], ...]:
    pairs = [*BASE, ("__name__", name), *extra]
    if k is not None:
        pairs.append(("k", k))
    return tuple(sorted(pairs))


def test_bytes_match_protobuf_serialization() -> None:
    enc = encoder()
    batch = number_batch(
        {"a": 1.5, "b": 0.0, "c": -0.0, "d": 1e300}, name="g", kind=MetricKind.GAUGE
    )
    per_shard, drops = enc.encode(batch, 1, 0.0)
    body = fragments_body(per_shard)
    assert not drops
    expected = schema.WriteRequest()
    for key, value in (("a", 1.5), ("b", 0.0), ("c", -0.0), ("d", 1e300)):
        ts = expected.timeseries.add()
        for name, label_value in labels("g", k=key):
            ts.labels.add(name=name, value=label_value)
        ts.samples.add(value=value, timestamp=MS)
    assert body == expected.SerializeToString()
    assert decode_body(body).SerializeToString() == body


def test_unusual_timestamps_and_long_labels_match_protobuf() -> None:
    long_value = "x" * 300
    block = label_block([("__name__", "m"), ("a", long_value)])
    encoded = EncodedSeries(block)
    for ms in (0, 1, 127, 128, 2**40, 2**50, -5):
        out = bytearray()
        tail = b"\x10" + _varint(ms) if ms else b""
        encoded.append(out, struct.pack("<d", 2.5), tail)
        expected = schema.WriteRequest()
        ts = expected.timeseries.add()
        ts.labels.add(name="__name__", value="m")
        ts.labels.add(name="a", value=long_value)
        ts.samples.add(value=2.5, timestamp=ms)
        assert bytes(out) == expected.SerializeToString(), ms


def _varint(value: int) -> bytes:
    from metricgate.wire.protowire import varint

    return varint(value)


def test_external_labels_do_not_override_series_labels() -> None:
    enc = encoder(external_labels={"k": "ext", "cluster": "eu", "a_first": "1"})
    per_shard, _ = enc.encode(number_batch({"mine": 3.0}, name="g", kind=MetricKind.GAUGE), 1, 0)
    [(got, value, ts)] = samples_of(decode_body(fragments_body(per_shard)))
    assert got == labels("g", ("cluster", "eu"), ("a_first", "1"), k="mine")
    assert [n for n, _ in got] == sorted(n for n, _ in got)
    assert (value, ts) == (3.0, MS)


def test_empty_label_values_are_dropped() -> None:
    enc = encoder()
    m = metric("g", MetricKind.GAUGE)
    points = MetricPoints(m)
    points.append(INTERNER.intern_series(m, (("empty", ""), ("k", "v"))), 1.0, NS)
    per_shard, _ = enc.encode(Batch([points]), 1, 0)
    [(got, _, _)] = samples_of(decode_body(fragments_body(per_shard)))
    assert got == labels("g", k="v")


def test_histogram_becomes_buckets_sum_count() -> None:
    m = metric("lat", MetricKind.HISTOGRAM, unit="s")
    points = MetricPoints(m)
    series = INTERNER.intern_series(m, (("k", "x"),))
    points.append(series, HistogramPoint(6, 4.5, (0.5, 1.0), (1, 2, 3)), NS)
    per_shard, _ = encoder().encode(Batch([points]), 1, 0)
    got = {
        (dict(lbl)["__name__"], dict(lbl).get("le")): v
        for lbl, v, _ in samples_of(decode_body(fragments_body(per_shard)))
    }
    assert got == {
        ("lat_seconds_bucket", "0.5"): 1,
        ("lat_seconds_bucket", "1"): 3,
        ("lat_seconds_bucket", "+Inf"): 6,
        ("lat_seconds_sum", None): 4.5,
        ("lat_seconds_count", None): 6,
    }


def test_summary_becomes_quantiles_sum_count() -> None:
    m = metric("rpc", MetricKind.SUMMARY)
    points = MetricPoints(m)
    points.append(
        INTERNER.intern_series(m, ()), SummaryPoint(10, 20.0, ((0.5, 1.0), (0.99, 3.0))), NS
    )
    per_shard, _ = encoder().encode(Batch([points]), 1, 0)
    got = {
        (dict(lbl)["__name__"], dict(lbl).get("quantile")): v
        for lbl, v, _ in samples_of(decode_body(fragments_body(per_shard)))
    }
    assert got == {
        ("rpc", "0.5"): 1.0,
        ("rpc", "0.99"): 3.0,
        ("rpc_sum", None): 20.0,
        ("rpc_count", None): 10,
    }


def test_exponential_histogram_is_converted() -> None:
    m = metric("size", MetricKind.EXPONENTIAL_HISTOGRAM, unit="By")
    points = MetricPoints(m)
    point = ExponentialHistogramPoint(
        count=5,
        sum=10.0,
        scale=0,
        zero_count=1,
        positive=BucketRange(0, (2, 2)),
        negative=BucketRange(0, ()),
    )
    points.append(INTERNER.intern_series(m, ()), point, NS)
    per_shard, _ = encoder().encode(Batch([points]), 1, 0)
    got = {
        (dict(lbl)["__name__"], dict(lbl).get("le")): v
        for lbl, v, _ in samples_of(decode_body(fragments_body(per_shard)))
    }
    assert got[("size_bytes_bucket", "+Inf")] == 5
    assert got[("size_bytes_count", None)] == 5
    assert got[("size_bytes_bucket", "4")] == 5
    assert got[("size_bytes_bucket", "2")] == 3


def test_delta_sums_and_histograms_accumulate() -> None:
    enc = encoder()
    for i, value in enumerate((5.0, 7.0)):
        ts = NS + i * 10**9
        batch = number_batch({"a": value}, name="jobs", temporality=Temporality.DELTA, timestamp=ts)
        batch.metrics[0].start_timestamps[0] = ts - 10**9
        per_shard, _ = enc.encode(batch, 1, 0)
        [(_, got, _)] = samples_of(decode_body(fragments_body(per_shard)))
    assert got == 12.0
    m = metric("dur", MetricKind.HISTOGRAM, temporality=Temporality.DELTA)
    series = INTERNER.intern_series(m, ())
    for i in range(2):
        points = MetricPoints(m)
        points.append(series, HistogramPoint(1, 2.0, (1.0,), (0, 1)), NS + i, NS + i - 1)
        per_shard, _ = enc.encode(Batch([points]), 1, 0)
    got_h = {
        dict(lbl)["__name__"]: v
        for lbl, v, _ in samples_of(decode_body(fragments_body(per_shard)))
        if dict(lbl).get("le") in (None, "+Inf")
    }
    assert got_h == {"dur_bucket": 2, "dur_sum": 4.0, "dur_count": 2}


def test_no_recorded_value_sends_exact_stale_nan_once() -> None:
    enc = encoder()
    enc.encode(number_batch({"a": 1.0}, name="g", kind=MetricKind.GAUGE), 1, 0)
    batch = number_batch({"a": 0.0}, name="g", kind=MetricKind.GAUGE, timestamp=NS + 10**9)
    batch.metrics[0].flags[0] = FLAG_NO_RECORDED_VALUE
    batch.metrics[0].values[0] = float("nan")
    body = fragments_body(enc.encode(batch, 1, 0)[0])
    [(got, value, ts)] = samples_of(decode_body(body))
    assert (got, value, ts) == (labels("g", k="a"), "stale", MS + 1000)
    assert struct.pack("<Q", 0x7FF0000000000002) in body
    assert len(enc) == 0


def test_expiry_sends_stale_for_every_output_series() -> None:
    enc = encoder()
    m = metric("lat", MetricKind.HISTOGRAM)
    points = MetricPoints(m)
    points.append(INTERNER.intern_series(m, ()), HistogramPoint(1, 1.0, (1.0,), (1, 0)), NS)
    enc.encode(Batch([points]), 1, now=10.0)
    per_shard, removed = enc.expire(cutoff=20.0, shards=1, now_ms=MS + 5)
    got = samples_of(decode_body(fragments_body(per_shard)))
    assert removed == 1
    assert len(got) == 4 and {v for _, v, _ in got} == {"stale"}
    assert enc.expire(cutoff=30.0, shards=1, now_ms=MS + 6) == ([[]], 0)


def test_staleness_can_be_turned_off() -> None:
    enc = encoder(send_staleness=False)
    enc.encode(number_batch({"a": 1.0}, name="g", kind=MetricKind.GAUGE), 1, 0)
    assert enc.expire(cutoff=1.0, shards=1, now_ms=MS) == ([[]], 1)


def test_series_keep_their_shard_and_fragments_respect_max_samples() -> None:
    enc = encoder(max_samples=7)
    values = {f"s{i}": float(i) for i in range(100)}
    first, _ = enc.encode(number_batch(values, name="g", kind=MetricKind.GAUGE), 4, 0)
    second, _ = enc.encode(number_batch(values, name="g", kind=MetricKind.GAUGE), 4, 0)
    for shard in range(4):
        assert all(f.samples <= 7 for f in first[shard])
        a = samples_of(decode_body(b"".join(f.data for f in first[shard])))
        b = samples_of(decode_body(b"".join(f.data for f in second[shard])))
        assert [lbl for lbl, _, _ in a] == [lbl for lbl, _, _ in b]
    assert sum(f.samples for fs in first for f in fs) == 100


def test_target_info_and_dropped_metrics() -> None:
    enc = Encoder(PrometheusTranslator())
    resource = INTERNER.intern_resource((("host.name", "h1"), ("service.name", "svc")))
    scope = INTERNER.intern_scope("s")
    good = INTERNER.intern_metric(resource, scope, "g", "", MetricKind.GAUGE)
    bad = INTERNER.intern_metric(resource, scope, "@#$", "", MetricKind.GAUGE)
    batch = Batch([MetricPoints(good), MetricPoints(bad)])
    batch.metrics[0].append(INTERNER.intern_series(good, ()), 1.0, NS)
    batch.metrics[1].append(INTERNER.intern_series(bad, ()), 1.0, NS)
    per_shard, drops = enc.encode(batch, 1, 0)
    got = {
        dict(lbl)["__name__"]: (dict(lbl), v)
        for lbl, v, _ in samples_of(decode_body(fragments_body(per_shard)))
    }
    assert drops == {"invalid_metric_name": 1}
    assert got["target_info"] == ({"__name__": "target_info", "job": "svc", "host_name": "h1"}, 1.0)


def test_changed_bounds_end_the_vanished_bucket_series() -> None:
    enc = encoder()
    m = metric("lat", MetricKind.HISTOGRAM)
    series = INTERNER.intern_series(m, ())
    first = MetricPoints(m)
    first.append(series, HistogramPoint(1, 1.0, (1.0, 2.0), (1, 0, 0)), NS)
    enc.encode(Batch([first]), 1, 0)
    second = MetricPoints(m)
    second.append(series, HistogramPoint(2, 2.0, (1.0, 5.0), (1, 1, 0)), NS + 1)
    got = samples_of(decode_body(fragments_body(enc.encode(Batch([second]), 1, 0)[0])))
    stale = [dict(lbl).get("le") for lbl, v, _ in got if v == "stale"]
    assert stale == ["2"]
    assert {dict(lbl).get("le") for lbl, v, _ in got if v != "stale"} == {"1", "5", "+Inf", None}


def test_bounds_and_quantiles_are_spelled_as_on_the_page() -> None:
    per_shard, _ = encoder().encode(bounds_batch(), 1, 0)
    got = [
        (dict(lbl)["__name__"], dict(lbl).get("le", dict(lbl).get("quantile")), v)
        for lbl, v, _ in samples_of(decode_body(fragments_body(per_shard)))
    ]
    assert [(name, le) for name, le, _ in got if name == "upload_bytes_bucket"] == [
        ("upload_bytes_bucket", "0.005"),
        ("upload_bytes_bucket", "1"),
        ("upload_bytes_bucket", "10"),
        ("upload_bytes_bucket", "1e+06"),
        ("upload_bytes_bucket", "+Inf"),
    ]
    # a repeated quantile or bound is one series: the last value, the count through the last
    assert [(le, v) for name, le, v in got if name == "rpc"] == [("0.5", 0.2), ("0.9", 0.7)]
    assert [(le, v) for name, le, v in got if name == "repeated_seconds_bucket"] == [
        ("1", 3),
        ("2", 6),
        ("+Inf", 6),
    ]


def test_a_second_writer_of_one_series_is_dropped_until_the_first_ends() -> None:
    enc = encoder()
    scope = INTERNER.intern_scope("test.scope", "1.0")
    groups = []
    for host in ("a", "b"):  # two resources, one job: the same series on the wire
        res = INTERNER.intern_resource((("host.name", host), ("service.name", "svc")))
        m = INTERNER.intern_metric(res, scope, "g", "", MetricKind.GAUGE, Temporality.UNSPECIFIED)
        points = MetricPoints(m)
        points.append(INTERNER.intern_series(m, (("k", "v"),)), float(len(groups)), NS)
        groups.append(points)
    per_shard, drops = enc.encode(Batch(groups), 1, 0.0)
    assert drops == {"duplicate_series": 1}
    assert [v for _, v, _ in samples_of(decode_body(fragments_body(per_shard)))] == [0.0]
    enc.expire(1.0, 1, MS)  # both forgotten: the second may write once the first is gone
    per_shard, drops = enc.encode(Batch(groups[1:]), 1, 2.0)
    assert not drops
    assert [v for _, v, _ in samples_of(decode_body(fragments_body(per_shard)))] == [1.0]
