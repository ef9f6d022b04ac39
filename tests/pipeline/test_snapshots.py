"""State across restarts: the snapshot files, and a service that stops and starts again."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from metricgate.config import load_config_text
from metricgate.errors import ConfigError
from metricgate.exporters.prometheus.exporter import PrometheusExporter
from metricgate.exporters.prometheus.render import render
from metricgate.model import INTERNER, Batch, MetricKind, Temporality
from metricgate.pipeline.encryption import Keyring, write_key_file
from metricgate.pipeline.service import Service
from metricgate.pipeline.snapshots import (
    SnapshotIgnored,
    SnapshotPoints,
    SnapshotStore,
    StateSnapshot,
    Tracked,
    points,
)
from tests.support.batches import number_batch
from tests.support.capture import InjectReceiver, registry_with_capture

CONFIG = """
receivers:
  inject: {{}}
processors:
  delta_to_cumulative: {{max_stale: {max_stale}}}
exporters:
  prometheus: {{endpoint: "127.0.0.1:0"}}
service:
  state_directory: {directory}
  pipelines:
    metrics: {{receivers: [inject], processors: [delta_to_cumulative], exporters: [prometheus]}}
  telemetry: {{metrics: {{address: ""}}}}
"""


class _Counter:
    """A stand-in stateful component: its state is one number."""

    snapshot_version = 1

    def __init__(self, value: int = 0) -> None:
        self.value = value

    def snapshot_state(self) -> StateSnapshot:
        return StateSnapshot({"value": self.value})

    def restore_state(self, snapshot: StateSnapshot) -> None:
        self.value = snapshot.fields["value"]


def _tracked(component: _Counter, digest: str = "d1") -> Tracked:
    return Tracked("processor-counter@metrics", "counter", digest, component)


def test_round_trip_and_the_file_is_gone_once_read(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    store.save(_tracked(_Counter(42)))
    assert [p.name for p in tmp_path.iterdir()] == ["processor-counter@metrics.state"]
    restored = _Counter()
    store.restore_all([_tracked(restored)])
    assert restored.value == 42
    assert not list(tmp_path.iterdir())  # a kill -9 after this start restores nothing


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda data: data[:-3], "corrupt: checksum mismatch"),
        (lambda data: data[:9] + bytes([data[9] ^ 1]) + data[10:], "corrupt: checksum mismatch"),
        (lambda data: b"\x80\x04pickle" + data, "corrupt: not a snapshot file"),
        (lambda data: b"", "corrupt: not a snapshot file"),
    ],
)
def test_corrupt_snapshots_are_logged_and_ignored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: object, reason: str
) -> None:
    store = SnapshotStore(tmp_path)
    path = tmp_path / "processor-counter@metrics.state"
    store.save(_tracked(_Counter(42)))
    path.write_bytes(damage(path.read_bytes()))  # type: ignore[operator]
    restored = _Counter()
    with caplog.at_level(logging.INFO):
        store.restore_all([_tracked(restored)])
    assert restored.value == 0
    lines = [r.getMessage() for r in caplog.records]
    assert any(
        line.startswith("state snapshot of processor-counter@metrics ignored: " + reason)
        for line in lines
    ), lines


def test_stale_snapshots_are_ignored(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    store.save(_tracked(_Counter(42)))
    with pytest.raises(SnapshotIgnored, match="stale: the component's config changed"):
        store.load(_tracked(_Counter(), digest="d2"))
    store.save(_tracked(_Counter(42)))
    newer = _Counter()
    newer.snapshot_version = 2
    with pytest.raises(SnapshotIgnored, match="stale: snapshot version 1 is not known"):
        store.load(_tracked(newer))
    with pytest.raises(SnapshotIgnored, match="no snapshot"):
        store.load(_tracked(_Counter()))


def test_a_missing_directory_is_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = SnapshotStore(tmp_path / "absent")
    with caplog.at_level(logging.INFO):
        store.restore_all([_tracked(_Counter())])
    assert "does not exist yet: no state restored" in caplog.text
    store.save(_tracked(_Counter(1)))  # created on the first save
    assert (tmp_path / "absent" / "processor-counter@metrics.state").exists()


def _page(service: Service) -> str:
    exporter = service.exporter_queues["prometheus"].exporter
    assert isinstance(exporter, PrometheusExporter)
    return "".join(render(exporter.store))


async def _run_once(directory: Path, deltas: list[float], max_stale: str = "5m") -> str:
    """Start a gateway, send `deltas` (one delta point each), stop it; its page then."""
    registry = registry_with_capture()
    config = load_config_text(CONFIG.format(directory=directory, max_stale=max_stale), registry, {})
    service = Service(config)
    await service.start()
    try:
        inject = InjectReceiver.instances["inject"]
        for value in deltas:
            await inject.push(
                number_batch({"a": value}, timestamp=_next_time(), temporality=Temporality.DELTA)
            )
    finally:
        await service.shutdown()  # drains the exporter queue
    return _page(service)


_TIME = [1_700_000_000_000_000_000]


def _next_time() -> int:
    _TIME[0] += 1_000_000_000
    return _TIME[0]


async def test_counters_continue_across_a_restart(tmp_path: Path) -> None:
    assert 'requests_total{job="svc",k="a",otel_scope_name="test.scope"' in await _run_once(
        tmp_path, [5.0]
    )
    page = await _run_once(tmp_path, [])
    assert "} 5\n" in page  # on the page before any new point
    page = await _run_once(tmp_path, [3.0])
    assert "} 8\n" in page  # delta_to_cumulative went on from 5


async def test_a_changed_processor_config_starts_it_afresh(tmp_path: Path) -> None:
    await _run_once(tmp_path, [5.0])
    page = await _run_once(tmp_path, [3.0], max_stale="6m")
    assert "} 3\n" in page  # delta_to_cumulative restarted; the page took the new total


async def test_what_a_reload_rebuilt_is_what_the_next_start_gets_back(tmp_path: Path) -> None:
    """Snapshots follow the running graph: a processor a reload rebuilt (new max_stale) writes
    its state at shutdown under its new config, and a start with that config takes it back."""
    registry = registry_with_capture()
    config = load_config_text(CONFIG.format(directory=tmp_path, max_stale="5m"), registry, {})
    changed = load_config_text(CONFIG.format(directory=tmp_path, max_stale="6m"), registry, {})
    service = Service(config)
    await service.start()
    try:
        await InjectReceiver.instances["inject"].push(
            number_batch({"a": 5.0}, timestamp=_next_time(), temporality=Temporality.DELTA)
        )
        changes = await service.reload(changed)
        assert changes.rebuilt == ["processors.delta_to_cumulative (pipeline metrics)"]
        await InjectReceiver.instances["inject"].push(
            number_batch({"a": 2.0}, timestamp=_next_time(), temporality=Temporality.DELTA)
        )
    finally:
        await service.shutdown()
    page = await _run_once(tmp_path, [3.0], max_stale="6m")
    assert "} 10\n" in page  # 5 + 2 before the restart, + 3 after: the rebuilt one's state


def test_sealed_snapshots(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    key = Keyring(write_key_file(str(tmp_path / "state.key")))
    other = Keyring(write_key_file(str(tmp_path / "other.key")))
    directory = tmp_path / "state"
    path = directory / "processor-counter@metrics.state"
    sealed = SnapshotStore(directory, key)
    sealed.save(_tracked(_Counter(42)))
    assert b"counter" not in path.read_bytes()  # the header JSON is sealed too
    restored = _Counter()
    sealed.restore_all([_tracked(restored)])
    assert restored.value == 42

    cases = [
        (SnapshotStore(directory), "sealed, but service.state_encryption is not set"),
        (SnapshotStore(directory, other), "corrupt: segment was sealed with key id"),
    ]
    for reader, reason in cases:
        sealed.save(_tracked(_Counter(42)))
        with pytest.raises(SnapshotIgnored, match=reason):
            reader.load(_tracked(_Counter()))
    # moved to another component's name: does not open
    sealed.save(_tracked(_Counter(42)))
    path.rename(directory / "processor-other@metrics.state")
    moved = Tracked("processor-other@metrics", "counter", "d1", _Counter())
    with pytest.raises(SnapshotIgnored, match="corrupt: encrypted record failed authentication"):
        sealed.load(moved)
    # a file in the clear is not restored when snapshots are sealed
    SnapshotStore(directory).save(_tracked(_Counter(42)))
    with pytest.raises(SnapshotIgnored, match="written in the clear"):
        sealed.load(_tracked(_Counter()))


def test_an_unreadable_state_key_stops_the_start_naming_its_key(tmp_path: Path) -> None:
    text = CONFIG.format(directory=tmp_path, max_stale="5m").replace(
        "  state_directory:",
        f"  state_encryption: {{key_file: {tmp_path / 'missing.key'}}}\n  state_directory:",
    )
    config = load_config_text(text, registry_with_capture(), {})
    with pytest.raises(ConfigError, match=r"service\.state_encryption\.key_file: cannot read"):
        Service(config)


class _Series:
    """A stand-in stateful component: a batch of series."""

    snapshot_version = 1

    def __init__(self, batch: Batch | None = None) -> None:
        self.batch = batch or Batch([])

    def snapshot_state(self) -> StateSnapshot:
        return StateSnapshot(batch=self.batch)

    def restore_state(self, snapshot: StateSnapshot) -> None:
        self.batch = snapshot.batch


def test_series_come_back_as_the_same_series_native_prometheus_ones_included(
    tmp_path: Path,
) -> None:
    native = INTERNER.intern_metric(
        INTERNER.intern_resource(()),
        INTERNER.intern_scope(""),
        "http_requests_total",
        "",
        MetricKind.SUM,
        Temporality.CUMULATIVE,
        True,
        native_prometheus=True,
    )
    plain = number_batch({"a": 1.0}).metrics[0].series[0]
    kept = SnapshotPoints()
    kept.add(INTERNER.intern_series(native, (("job", "api"), ("path", "/"))), 7.0, 0)
    kept.add(plain, 3.0, 123, 100)
    store = SnapshotStore(tmp_path)
    store.save(Tracked("exporter-x", "x", "d", _Series(kept.batch())))
    restored = _Series()
    store.restore_all([Tracked("exporter-x", "x", "d", restored)])
    got = {
        (series, value, timestamp, start)
        for group in restored.batch.metrics
        for series, value, timestamp, start in points(group)
    }
    assert got == {
        (INTERNER.intern_series(native, (("job", "api"), ("path", "/"))), 7.0, 0, 0),
        (plain, 3.0, 123, 100),
    }
    assert any(group.metric.native_prometheus for group in restored.batch.metrics)


def test_a_component_that_cannot_take_its_snapshot_starts_empty(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken(_Counter):
        def restore_state(self, snapshot: StateSnapshot) -> None:
            raise RuntimeError("unexpected")

    store = SnapshotStore(tmp_path)
    store.save(_tracked(_Counter(42)))
    with caplog.at_level(logging.INFO):
        store.restore_all([_tracked(Broken())])
    assert "ignored: does not fit the component (RuntimeError('unexpected'))" in caplog.text
