"""State across restarts: what stateful components write on a graceful shutdown and read back.

With `service.state_directory` set, every component that implements `Stateful` (the Prometheus
exporter's page, `delta_to_cumulative`, `cumulative_to_delta`, the remote-write encoder, the
cardinality limiter) hands a `StateSnapshot` to the `SnapshotStore` after it shut down, and gets it
back before it starts, if the snapshot is for the same component with the same config.

A snapshot is `fields` (plain JSON: counts, times, small tables) and `batch` (per-series state as
points: the series identity and the value, timestamp and start time the component keeps for it).
The batch is written as an OTLP `ExportMetricsServiceRequest` with the persistent queue's
`BatchCodec`, so series identity round-trips exactly like queued data does, and nothing in a
file can build an object other than series and points (no pickle: a snapshot may be corrupt or
come from somewhere else). Timestamps are written 1 ns later than given (`SnapshotPoints`) and
read back as given (`points`): OTLP has no point without a time, and state may have time 0.
Metrics already in Prometheus form (`native_prometheus`, which OTLP cannot say) keep their flag
through the codec (`NATIVE_MARK` on their scope).

One file per component, `<directory>/<kind>-<component id>[@<pipeline id>].state` (ids quoted):

| bytes | what                                                                                     |
| ----- | ---------------------------------------------------------------------------------------- |
| 4     | magic: `MGS1` (payload in the clear) or `MGSE` (sealed, `service.state_encryption`)      |
| 4     | u32 crc32 of the payload (finds torn writes and flipped bits, sealed or not)             |
| rest  | payload; sealed: the 16-byte key header of `metricgate.pipeline.encryption` and the      |
|       | plain payload sealed with AES-256-GCM, authenticated with the file's component key       |
|       | (a file renamed to another component does not open)                                      |

The plain payload: u32 length of the header JSON, the header JSON (`component`, `type`,
`state_version`, `config`: sha256 of the component's type and config, `written`: Unix s,
`fields`), then the batch as OTLP protobuf (may be empty). With `service.state_encryption` only
sealed files are restored (a file in the clear may have been planted); without it, sealed files
are ignored.

It is written to a temporary file, fsynced, and renamed over the old one (then the directory is
fsynced), so a crash mid-write leaves the previous file or none. A file is removed once read:
state restored once must not come back after a crash (kill -9 then starts from nothing, as
without snapshots). A missing, stale (other config, unknown version) or corrupt snapshot is
logged in one line naming the component and why, and ignored; it never stops the gateway.

Invariant: `restore_state` is called before `start`, `snapshot_state` after `shutdown`, both
from the event loop; `restore_state` takes a whole snapshot or raises and leaves the component as
it was (empty): whatever it raises, the snapshot is logged as ignored and the gateway starts.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import struct
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol, runtime_checkable
from urllib.parse import quote

from pydantic import BaseModel

from metricgate.errors import RecordIntegrityError
from metricgate.model import (
    Batch,
    BucketRange,
    ExponentialHistogramPoint,
    HistogramPoint,
    Metric,
    MetricKind,
    MetricPoints,
    PointValue,
    Series,
    SummaryPoint,
)
from metricgate.pipeline.encryption import HEADER_SIZE, Keyring
from metricgate.pipeline.persistent_queue import BatchCodec

log = logging.getLogger(__name__)

MAGIC: Final = b"MGS1"
SEALED_MAGIC: Final = b"MGSE"
_FRAME: Final = struct.Struct("<4sI")
"""magic, crc32 of the rest."""
_LENGTH: Final = struct.Struct("<I")


@dataclass
class StateSnapshot:
    """What a component keeps across a restart: JSON `fields` and per-series `batch` points."""

    fields: dict[str, Any] = field(default_factory=dict)
    batch: Batch = field(default_factory=lambda: Batch([]))


@runtime_checkable
class Stateful(Protocol):
    """A component whose state survives a graceful restart (see module docstring).

    `snapshot_version` names the layout of its snapshot; a file with another one is ignored.
    """

    snapshot_version: int

    def snapshot_state(self) -> StateSnapshot:
        """The state to keep; called once, after `shutdown`."""

    def restore_state(self, snapshot: StateSnapshot) -> None:
        """Take `snapshot` back (before `start`); raise `ValueError` if it does not fit."""


class SnapshotPoints:
    """Builds a snapshot's batch from per-series points, grouped by metric as a `Batch` wants."""

    def __init__(self) -> None:
        self._groups: dict[Metric, MetricPoints] = {}

    def add(self, series: Series, value: PointValue, timestamp: int = 0, start: int = 0) -> None:
        group = self._groups.get(series.metric)
        if group is None:
            group = self._groups[series.metric] = MetricPoints(series.metric)
        group.append(series, value, timestamp + 1, start)  # OTLP drops points at time 0

    def batch(self) -> Batch:
        return Batch(list(self._groups.values()))


_EMPTY: Final[dict[MetricKind, PointValue]] = {
    MetricKind.GAUGE: 0.0,
    MetricKind.SUM: 0.0,
    MetricKind.HISTOGRAM: HistogramPoint(0, None, (), (0,)),
    MetricKind.EXPONENTIAL_HISTOGRAM: ExponentialHistogramPoint(
        0, None, 0, 0, BucketRange(0, ()), BucketRange(0, ())
    ),
    MetricKind.SUMMARY: SummaryPoint(0, 0.0, ()),
}


def empty_value(kind: MetricKind) -> PointValue:
    """A value of `kind` for state that is only a series (its value is never read)."""
    return _EMPTY[kind]


def points(group: MetricPoints) -> Iterable[tuple[Series, PointValue, int, int]]:
    """Each point of a group of a restored batch: series, value, timestamp, start timestamp,
    as given to `SnapshotPoints.add`."""
    for series, value, timestamp, start in zip(
        group.series, group.values, group.timestamps, group.start_timestamps, strict=True
    ):
        yield series, value, timestamp - 1, start


def config_digest(component_type: str, config: BaseModel) -> str:
    """A digest of a component's config: a snapshot restores only into the same config."""
    text = json.dumps([component_type, config.model_dump(mode="json")], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class SnapshotIgnored(Exception):
    """A snapshot that cannot be restored; the message says why."""


@dataclass(frozen=True)
class Tracked:
    """A stateful component as the store knows it: its file key, type and config digest."""

    key: str
    component_type: str
    digest: str
    component: Stateful


class SnapshotStore:
    """Snapshot files under one directory (see module docstring)."""

    def __init__(self, directory: str | Path, keyring: Keyring | None = None) -> None:
        self.directory = Path(directory)
        self.keyring = keyring
        """Seals and opens the files (`service.state_encryption`); None: written in the clear."""
        self._codec: BatchCodec | None = None

    def path(self, key: str) -> Path:
        return self.directory / f"{quote(key, safe='@')}.state"

    # -- writing --------------------------------------------------------------------------------

    def save(self, tracked: Tracked) -> int:
        """Write `tracked`'s snapshot atomically; returns its size in bytes."""
        component = tracked.component
        snapshot = component.snapshot_state()
        header = json.dumps(
            {
                "component": tracked.key,
                "type": tracked.component_type,
                "state_version": component.snapshot_version,
                "config": tracked.digest,
                "written": time.time(),
                "fields": snapshot.fields,
            },
            separators=(",", ":"),
        ).encode()
        body = self.codec().encode(snapshot.batch) if snapshot.batch.metrics else b""
        payload = _LENGTH.pack(len(header)) + header + body
        magic = MAGIC
        if self.keyring is not None:
            sealer = self.keyring.sealer()
            payload = sealer.header + sealer.seal(payload, tracked.key.encode())
            magic = SEALED_MAGIC
        data = _FRAME.pack(magic, zlib.crc32(payload)) + payload
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.path(tracked.key)
        temporary = path.with_name(path.name + ".tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(descriptor, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
        _fsync_directory(self.directory)
        return len(data)

    def save_all(self, components: Iterable[Tracked]) -> None:
        """Save each; a failure is logged and the others still saved."""
        for tracked in components:
            began = time.perf_counter()
            try:
                size = self.save(tracked)
            except Exception as exc:
                log.error(
                    f"state snapshot of {tracked.key} not written: {exc!r}",
                    extra={"component": tracked.key, "error": repr(exc)},
                )
                continue
            log.info(
                f"state snapshot of {tracked.key} written",
                extra={
                    "component": tracked.key,
                    "bytes": size,
                    "seconds": round(time.perf_counter() - began, 3),
                },
            )

    # -- reading --------------------------------------------------------------------------------

    def load(self, tracked: Tracked) -> StateSnapshot:
        """The snapshot for `tracked`, read and removed; `SnapshotIgnored` says why not."""
        path = self.path(tracked.key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise SnapshotIgnored("no snapshot") from None
        except OSError as exc:
            raise SnapshotIgnored(f"unreadable: {exc.strerror}") from None
        with contextlib.suppress(OSError):
            path.unlink()
        return self.parse(data, tracked)

    def parse(self, data: bytes, tracked: Tracked) -> StateSnapshot:
        """Check and decode a snapshot file's bytes (see the format in the module docstring)."""
        if len(data) < _FRAME.size or data[:4] not in (MAGIC, SEALED_MAGIC):
            raise SnapshotIgnored("corrupt: not a snapshot file (unknown format)")
        magic, crc = _FRAME.unpack_from(data)
        payload = data[_FRAME.size :]
        if zlib.crc32(payload) != crc:
            raise SnapshotIgnored("corrupt: checksum mismatch")
        payload = self._opened(magic, payload, tracked.key)
        try:
            (length,) = _LENGTH.unpack_from(payload)
            header = json.loads(payload[_LENGTH.size : _LENGTH.size + length])
            state_version = header["state_version"]
            digest = header["config"]
            fields = header["fields"]
        except (ValueError, KeyError, TypeError, struct.error) as exc:
            raise SnapshotIgnored(f"corrupt: bad header ({exc})") from None
        if header.get("type") != tracked.component_type:
            raise SnapshotIgnored(f"stale: written by type {header.get('type')!r}")
        if state_version != tracked.component.snapshot_version:
            raise SnapshotIgnored(f"stale: snapshot version {state_version!r} is not known")
        if digest != tracked.digest:
            raise SnapshotIgnored("stale: the component's config changed")
        if not isinstance(fields, dict):
            raise SnapshotIgnored("corrupt: bad header (fields)")
        body = payload[_LENGTH.size + length :]
        batch = Batch([])
        if body:
            try:
                batch, rejected = self.codec().decode(body)
            except Exception as exc:
                raise SnapshotIgnored(f"corrupt: series do not decode ({exc})") from None
            if rejected:
                raise SnapshotIgnored(f"corrupt: {rejected} points do not decode")
        return StateSnapshot(fields, batch)

    def _opened(self, magic: bytes, payload: bytes, key: str) -> bytes:
        """The plain payload of a file (its frame checked)."""
        if magic == MAGIC:
            if self.keyring is not None:
                raise SnapshotIgnored(
                    "written in the clear, but service.state_encryption is set (only sealed "
                    "snapshots are restored)"
                )
            return payload
        if self.keyring is None:
            raise SnapshotIgnored("sealed, but service.state_encryption is not set")
        try:
            opener = self.keyring.opener(payload[:HEADER_SIZE])
            return opener.open(payload[HEADER_SIZE:], key.encode())
        except RecordIntegrityError as exc:  # UnknownKeyError included
            raise SnapshotIgnored(f"corrupt: {exc}") from None

    def restore_all(self, components: Iterable[Tracked]) -> None:
        """Restore each component that has a usable snapshot; log one line for each that has not."""
        if not self.directory.is_dir():
            log.info(
                f"state directory {self.directory} does not exist yet: no state restored",
                extra={"directory": str(self.directory)},
            )
            return
        for tracked in components:
            began = time.perf_counter()
            try:
                snapshot = self.load(tracked)
                try:
                    tracked.component.restore_state(snapshot)
                except Exception as exc:  # a snapshot must never stop the gateway
                    raise SnapshotIgnored(f"does not fit the component ({exc!r})") from None
            except SnapshotIgnored as exc:
                level = logging.INFO if str(exc) == "no snapshot" else logging.WARNING
                log.log(
                    level,
                    f"state snapshot of {tracked.key} ignored: {exc}",
                    extra={"component": tracked.key, "reason": str(exc)},
                )
                continue
            log.info(
                f"state snapshot of {tracked.key} restored",
                extra={
                    "component": tracked.key,
                    "series": snapshot.batch.point_count(),
                    "seconds": round(time.perf_counter() - began, 3),
                },
            )

    def codec(self) -> BatchCodec:
        if self._codec is None:  # made on first use: its decoder holds caches
            self._codec = BatchCodec()
        return self._codec


def _fsync_directory(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
