"""Under `--workers N`, a 1.0 request's entries are split by the owner of their metric before
they are decoded (`owners.py`): checked against protobuf's own parse of every entry."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from metricgate import role
from metricgate.receivers.prometheus_remote_write.decode import parse_v1
from metricgate.receivers.prometheus_remote_write.owners import EntryOwners, request_body
from metricgate.wire.remotewrite.schema import WriteRequest

names = st.one_of(
    st.sampled_from(["up", "http_requests_total", "ÿ_unicode", "x" * 200]),
    st.from_regex(r"[a-zA-Z_:][a-zA-Z0-9_:]{0,20}", fullmatch=True),
)
label_names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True).filter(
    lambda n: n != "__name__"
)


@st.composite
def requests(draw: st.DrawFn) -> bytes:
    request = WriteRequest()
    for _ in range(draw(st.integers(0, 30))):
        series = request.timeseries.add()
        named = draw(st.integers(0, 9)) > 0  # without a name, it stays with the receiving worker
        labels = [("__name__", draw(names))] if named else []
        labels += [
            (n, draw(st.text(max_size=150)))
            for n in draw(st.lists(label_names, max_size=4, unique=True))
        ]
        if draw(st.booleans()):
            labels.sort()
        for name, value in labels:
            series.labels.add(name=name, value=value)
        series.samples.add(value=1.0, timestamp=draw(st.integers(0, 2**40)))
    return request.SerializeToString()


def name_of(entry: bytes) -> str | None:
    request = WriteRequest.FromString(request_body([entry]))
    names = [label.value for label in request.timeseries[0].labels if label.name == "__name__"]
    return names[0] if names else None


@settings(max_examples=150, deadline=None)
@given(requests(), st.integers(2, 5), st.data())
def test_every_entry_goes_to_the_owner_of_its_metric(
    body: bytes, count: int, data: st.DataObject
) -> None:
    place = role.WorkerRole(data.draw(st.integers(0, count - 1)), count, "/nonexistent")
    owners = EntryOwners(place)
    entries = list(parse_v1(body).timeseries)
    expected: dict[int, list[bytes]] = {}
    for entry in entries:
        name = name_of(entry)
        owner = place.index if name is None else role.owner(name, count)
        expected.setdefault(owner, []).append(entry)
    assert owners.split(entries) == expected
    assert owners.split(entries) == expected  # again, from what the first split remembered


def test_parts_read_back_as_requests_in_their_order() -> None:
    request = WriteRequest()
    for i in range(40):
        series = request.timeseries.add()
        series.labels.add(name="__name__", value=f"metric_{i % 7}")
        series.labels.add(name="i", value=str(i))
        series.samples.add(value=float(i), timestamp=i)
    metadata = request.metadata.add(metric_family_name="metric_1", type=1, help="h")
    entries = list(parse_v1(request.SerializeToString()).timeseries)
    parts = EntryOwners(role.WorkerRole(0, 3, "/nonexistent")).split(entries)
    assert len(parts) > 1
    for owner, part in parts.items():
        read = WriteRequest.FromString(request_body(part, [metadata]))
        values = [series.samples[0].value for series in read.timeseries]
        assert values == sorted(values)
        assert {role.owner(s.labels[0].value, 3) for s in read.timeseries} == {owner}
        assert read.metadata[0].metric_family_name == "metric_1"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=60), max_size=20))
def test_entries_that_do_not_read_stay_with_the_receiving_worker(entries: list[bytes]) -> None:
    labels = [b"\x0a\x08__name__\x12" + entry for entry in entries[: len(entries) // 2]]
    prefixed = [b"\x0a" + bytes([len(label) % 128]) + label + b"\x12\x01" for label in labels]
    mixed = prefixed + entries
    parts = EntryOwners(role.WorkerRole(1, 3, "/nonexistent")).split(mixed)
    assert sorted(e for part in parts.values() for e in part) == sorted(mixed)
