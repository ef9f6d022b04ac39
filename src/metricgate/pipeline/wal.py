"""A write-ahead log for exporters' persistent queues: one append-only log per shard on disk.

Payload-agnostic: a record is opaque bytes with a sample and a point count. The ordered lanes
(`lanes.py`) keep one log per lane (remote-write stores encoded `TimeSeries` entries); the
persistent sending queue (`persistent_queue.py`) one log of OTLP-encoded batches.

Layout under `<storage.directory>/<exporter id>/`: `meta.json` (format version, shard count), a
`lock` file held with `flock` while the gateway runs, and per shard `shard-NNN/`, which
`wal_shard.py` writes, reads, acknowledges and recovers (segments, ack file, record framing,
encryption at rest). This module holds the shards together: the directory lock, the shard count
kept across restarts, the disk bound shared by all shards (refuse or drop the oldest sealed
segment) and the timer that syncs records (`fsync: batch`) and writes moved ack offsets
(`batch`, `never`; with `always` each ack is written as it happens).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

from metricgate.errors import QueueFullError
from metricgate.periodic import Periodic
from metricgate.pipeline.encryption import Keyring
from metricgate.pipeline.wal_records import (
    HEADER,
    HEADER_V1,
    HEADER_V2,
    MAGIC,
    MAGIC_V1,
    MAGIC_V2,
    Record,
)
from metricgate.pipeline.wal_shard import FsyncPolicy, ShardLog, WalStats

log = logging.getLogger(__name__)

__all__ = [
    "HEADER",
    "HEADER_V1",
    "HEADER_V2",
    "MAGIC",
    "MAGIC_V1",
    "MAGIC_V2",
    "Piece",
    "Record",
    "ShardLog",
    "WalStats",
    "WriteAheadLog",
]

FORMAT_VERSION = 1
SYNC_INTERVAL_S = 0.1
"""With `fsync: batch`, how often appended records are synced; with `batch` and `never`, how
often moved ack offsets are written (a crash re-sends what was delivered since)."""
FullPolicy = Literal["refuse", "drop_oldest"]
Piece = tuple[bytes, int, int] | tuple[bytes, int, int, bytes]
"""What `WriteAheadLog.append` writes: (payload, samples, points[, tag])."""


class WriteAheadLog:
    """All shard logs of one exporter, the disk bound and the sync timer (see module docstring)."""

    def __init__(
        self,
        directory: Path,
        shards: int,
        *,
        max_disk_bytes: int,
        fsync: FsyncPolicy = "batch",
        full_policy: FullPolicy = "refuse",
        segment_bytes: int = 16 * 1024 * 1024,
        name: str = "wal",
        clock: Callable[[], float] = time.time,
        on_drop: Callable[[str, int, int], None] | None = None,
        keyring: Keyring | None = None,
    ) -> None:
        self.directory = directory
        self.keyring = keyring
        """Seals new segments and opens old ones (`sending_queue.storage.encryption`)."""
        self.max_disk_bytes = max_disk_bytes
        self.fsync = fsync
        self.full_policy = full_policy
        self.name = name
        self.clock = clock
        self.stats = WalStats(listener=on_drop)
        directory.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(directory / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._lock_fd)
            raise RuntimeError(
                f"queue directory {directory} is in use by another process"
            ) from None
        self.shard_count = self._shard_count(shards)
        self.shards = [
            ShardLog(
                directory / f"shard-{i:03d}",
                segment_bytes,
                fsync,
                self.stats,
                name,
                index=i,
                keyring=keyring,
            )
            for i in range(self.shard_count)
        ]
        self._syncer = Periodic(
            "persistent queue sync", SYNC_INTERVAL_S, self._tick, log, {"queue": name}
        )

    def _shard_count(self, wanted: int) -> int:
        meta = self.directory / "meta.json"
        stored: int | None = None
        with contextlib.suppress(FileNotFoundError, ValueError, KeyError, TypeError):
            stored = int(json.loads(meta.read_text())["shards"])
        if stored is not None and stored != wanted:
            probe = [
                ShardLog(self.directory / f"shard-{i:03d}", 1 << 30, "never", self.stats, "probe")
                for i in range(stored)
            ]
            busy = any(p.pending_bytes for p in probe)
            for p in probe:
                p.close()
            if busy:
                log.warning(
                    "persistent queue holds data for another shard count; keeping it",
                    extra={"queue": self.name, "stored": stored, "configured": wanted},
                )
                return stored
            for i in range(stored):
                shard_dir = self.directory / f"shard-{i:03d}"
                for file in shard_dir.glob("*"):
                    file.unlink()
                shard_dir.rmdir()
        if stored != wanted:
            tmp = self.directory / "meta.json.tmp"
            tmp.write_text(json.dumps({"version": FORMAT_VERSION, "shards": wanted}))
            os.replace(tmp, meta)
        return wanted

    def start(self) -> None:
        if self.fsync != "always":
            self._syncer.start()

    async def close(self) -> None:
        await self._syncer.stop()
        self.persist_acks()
        for shard in self.shards:
            shard.close()
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    def sync(self) -> None:
        for shard in self.shards:
            try:
                shard.sync()
            except OSError:
                log.exception("persistent queue: fsync failed", extra={"queue": self.name})

    def persist_acks(self) -> None:
        """Write every shard's ack offset that moved since it was last written (and free the
        segments it passed)."""
        for shard in self.shards:
            if shard.acked > shard.persisted_ack:
                try:
                    shard.ack(shard.acked)
                except OSError:
                    log.exception(
                        "persistent queue: could not persist the ack offset",
                        extra={"queue": self.name},
                    )

    def _tick(self) -> None:
        if self.fsync == "batch":
            self.sync()
        self.persist_acks()

    @property
    def pending_bytes(self) -> int:
        return sum(s.pending_bytes for s in self.shards)

    @property
    def disk_bytes(self) -> int:
        return sum(s.disk_bytes for s in self.shards)

    def oldest_ms(self) -> int | None:
        times = [s.oldest_ms for s in self.shards if s.oldest_ms is not None]
        return min(times) if times else None

    def append(self, per_shard: Sequence[Sequence[Piece]]) -> None:
        """Write each shard's (payload, samples, points[, tag]) pieces, or raise
        `QueueFullError` for all of them."""
        now_ms = int(self.clock() * 1000)
        size = self.shards[0].record_size
        need = sum(
            size(len(piece[0]), len(piece[3]) if len(piece) == 4 else 0)
            for pieces in per_shard
            for piece in pieces
        )
        if not need:
            return
        while self.pending_bytes + need > self.max_disk_bytes:
            if self.full_policy != "drop_oldest" or not self._drop_oldest():
                raise QueueFullError(
                    f"persistent queue {self.name} is full "
                    f"({self.pending_bytes} of {self.max_disk_bytes} bytes)",
                    retry_after=1.0,
                )
        for shard, pieces in zip(self.shards, per_shard, strict=True):
            for piece in pieces:
                shard.append(
                    piece[0], piece[1], piece[2], now_ms, piece[3] if len(piece) == 4 else b""
                )

    def _drop_oldest(self) -> bool:
        candidates = [
            (ms, i) for i, s in enumerate(self.shards) if (ms := s.oldest_sealed_ms()) is not None
        ]
        if not candidates:
            return False
        _, index = min(candidates)
        dropped = self.shards[index].drop_oldest_segment()
        if dropped:
            log.warning(
                "persistent queue full: oldest segment dropped",
                extra={"queue": self.name, "shard": index},
            )
        return dropped
