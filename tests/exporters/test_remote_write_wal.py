"""The remote-write write-ahead log: order, acks, segments, crash recovery, corruption, limits."""

from __future__ import annotations

import asyncio
import struct
import zlib
from pathlib import Path

import pytest

from metricgate.errors import QueueFullError
from metricgate.pipeline.wal import HEADER, MAGIC_V1, WriteAheadLog


def open_wal(path: Path, **kwargs: object) -> WriteAheadLog:
    options: dict[str, object] = {
        "max_disk_bytes": 1 << 20,
        "fsync": "never",
        "segment_bytes": 4096,
    }
    options.update(kwargs)
    return WriteAheadLog(path, 2, **options)  # type: ignore[arg-type]


def payload(i: int, size: int = 100) -> bytes:
    return f"{i:08d}".encode() * (size // 8)


def read_all(wal: WriteAheadLog, shard: int = 0) -> list[bytes]:
    out: list[bytes] = []
    while True:
        records = wal.shards[shard].read(10_000, 0)
        if not records:
            return out
        out.extend(r.payload for r in records)


async def test_append_read_in_order_ack_and_segment_deletion(tmp_path: Path) -> None:
    wal = open_wal(tmp_path)
    for i in range(200):
        wal.append([[(payload(i), 1, 1)], [(payload(1000 + i), 2, 2)]])
    shard = wal.shards[0]
    assert len(shard.segments) > 3
    records = shard.read(50, 0)
    assert [r.payload for r in records] == [payload(i) for i in range(50)]
    assert wal.shards[1].read(100, 0)[0].samples == 2
    shard.ack(records[-1].end)
    before = len(shard.segments)
    rest = shard.read(10_000, 0)
    assert [r.payload for r in rest] == [payload(i) for i in range(50, 200)]
    shard.ack(rest[-1].end)
    assert len(shard.segments) == 1 < before
    assert len(list((tmp_path / "shard-000").glob("*.seg"))) == 1
    assert shard.pending_bytes == 0 and shard.oldest_ms is None
    await wal.close()


async def test_restart_replays_from_ack(tmp_path: Path) -> None:
    wal = open_wal(tmp_path)
    for i in range(100):
        wal.append([[(payload(i), 1, 1)], []])
    records = wal.shards[0].read(30, 0)
    wal.shards[0].ack(records[-1].end)
    await wal.close()
    wal = open_wal(tmp_path)
    assert read_all(wal) == [payload(i) for i in range(30, 100)]
    await wal.close()


@pytest.mark.parametrize("fsync", ["batch", "never"])
async def test_acks_are_written_by_the_timer_unless_fsync_always(
    tmp_path: Path, fsync: str
) -> None:
    """A reader's ack moves the offset at once (the room is free) and is written by the timer:
    one file write per 100 ms, not per request. A crash before that re-sends, never loses."""
    wal = open_wal(tmp_path, fsync=fsync)
    wal.start()
    shard = wal.shards[0]
    for i in range(100):
        wal.append([[(payload(i), 1, 1)], []])
    pending = shard.pending_bytes
    records = shard.read(40, 0)
    assert not shard.ack_at_once
    shard.delivered(records[-1].end)
    assert shard.pending_bytes < pending
    assert shard.persisted_ack < shard.acked
    # Nothing is written yet: a crash now would send the 40 records again.
    assert not (tmp_path / "shard-000" / "ack").exists()
    for _ in range(50):
        if shard.persisted_ack == shard.acked:
            break
        await asyncio.sleep(0.02)
    assert shard.persisted_ack == shard.acked
    assert struct.unpack_from("<Q", (tmp_path / "shard-000" / "ack").read_bytes())[0] == (
        shard.acked
    )
    more = shard.read(30, 0)
    shard.ack(more[-1].end, persist=False)
    await wal.close()  # a graceful stop writes the last offset
    wal = open_wal(tmp_path)
    assert read_all(wal) == [payload(i) for i in range(70, 100)]
    await wal.close()


async def test_fsync_always_writes_each_ack_at_once(tmp_path: Path) -> None:
    wal = open_wal(tmp_path, fsync="always")
    wal.start()
    shard = wal.shards[0]
    for i in range(10):
        wal.append([[(payload(i), 1, 1)], []])
    records = shard.read(4, 0)
    assert shard.ack_at_once
    shard.delivered(records[-1].end)
    assert struct.unpack_from("<Q", (tmp_path / "shard-000" / "ack").read_bytes())[0] == (
        records[-1].end
    )
    await wal.close()


async def test_truncated_tail_after_crash_is_cut(tmp_path: Path) -> None:
    wal = open_wal(tmp_path, segment_bytes=1 << 20)
    for i in range(10):
        wal.append([[(payload(i), 1, 1)], []])
    segment = wal.shards[0].segments[-1].path
    await wal.close()
    data = segment.read_bytes()
    segment.write_bytes(data[:-37])  # a write torn by kill -9 / power loss
    wal = open_wal(tmp_path, segment_bytes=1 << 20)
    assert wal.stats.dropped_records.get("truncated") == 1
    assert read_all(wal) == [payload(i) for i in range(9)]
    wal.append([[(payload(99), 1, 1)], []])
    assert read_all(wal) == [payload(99)]
    await wal.close()


async def test_corrupt_record_is_skipped_and_counted(tmp_path: Path) -> None:
    seen: list[tuple[str, int, int]] = []
    wal = open_wal(tmp_path, segment_bytes=1 << 20, on_drop=lambda *a: seen.append(a))
    for i in range(10):
        wal.append([[(payload(i), 1, 1)], []])
    segment = wal.shards[0].segments[-1].path
    record_size = HEADER.size + len(payload(0))
    data = bytearray(segment.read_bytes())
    data[3 * record_size + HEADER.size + 5] ^= 0xFF  # flip a payload byte of record 3
    segment.write_bytes(bytes(data))
    assert read_all(wal) == [payload(i) for i in range(10) if i != 3]
    assert wal.stats.dropped_records["corrupt"] == 1
    assert seen == [("corrupt", 1, 0)]
    await wal.close()


async def test_garbage_segment_and_ack_do_not_stop_the_start(tmp_path: Path) -> None:
    wal = open_wal(tmp_path)
    wal.append([[(payload(1), 1, 1)], []])
    await wal.close()
    (tmp_path / "shard-000" / "ack").write_bytes(b"garbage")
    (tmp_path / "shard-000" / f"{10**9:020d}.seg").write_bytes(b"\x00" * 500)
    wal = open_wal(tmp_path)
    assert payload(1) in read_all(wal)
    await wal.close()


async def test_full_refuses_by_default(tmp_path: Path) -> None:
    wal = open_wal(tmp_path, max_disk_bytes=5000)
    with pytest.raises(QueueFullError):
        for i in range(100):
            wal.append([[(payload(i), 1, 1)], []])
    assert wal.pending_bytes <= 5000
    records = wal.shards[0].read(10_000, 0)
    wal.shards[0].ack(records[-1].end)
    wal.append([[(payload(1), 1, 1)], []])  # room again once acknowledged
    await wal.close()


async def test_full_drops_oldest_segments_when_asked(tmp_path: Path) -> None:
    wal = open_wal(tmp_path, max_disk_bytes=10_000, full_policy="drop_oldest")
    for i in range(300):
        wal.append([[(payload(i), 1, 1)], []])
    assert wal.pending_bytes <= 10_000
    dropped = wal.stats.dropped_records["queue_full"]
    assert dropped > 0
    remaining = read_all(wal)
    assert len(remaining) + dropped == 300
    assert remaining == [payload(i) for i in range(300 - len(remaining), 300)]
    await wal.close()


async def test_directory_is_locked(tmp_path: Path) -> None:
    wal = open_wal(tmp_path)
    with pytest.raises(RuntimeError, match="in use"):
        open_wal(tmp_path)
    await wal.close()


async def test_shard_count_change_waits_for_an_empty_queue(tmp_path: Path) -> None:
    wal = open_wal(tmp_path)
    wal.append([[(payload(1), 1, 1)], [(payload(2), 1, 1)]])
    await wal.close()
    wal = WriteAheadLog(tmp_path, 3, max_disk_bytes=1 << 20, fsync="never")
    assert wal.shard_count == 2  # unsent data keeps its shards (and so its order)
    assert read_all(wal, 1) == [payload(2)]
    for shard in wal.shards:
        shard.read(10_000, 0)
        shard.ack(shard.end)
    await wal.close()
    wal = WriteAheadLog(tmp_path, 3, max_disk_bytes=1 << 20, fsync="never")
    assert wal.shard_count == 3
    await wal.close()


def format_1_record(payload: bytes, samples: int, time_ms: int) -> bytes:
    """A record as versions before points were counted wrote it (magic "MGW1", no points)."""
    tail = struct.pack("<IQ", samples, time_ms)
    crc = zlib.crc32(payload, zlib.crc32(tail, zlib.crc32(struct.pack("<I", len(payload)))))
    return struct.pack("<4sIIIQ", MAGIC_V1, len(payload), crc, samples, time_ms) + payload


async def test_records_of_the_previous_format_are_replayed_with_their_counts(
    tmp_path: Path,
) -> None:
    wal = open_wal(tmp_path)
    await wal.close()
    old = b"".join(format_1_record(payload(i), 3, 1_700_000_000_000) for i in range(5))
    (tmp_path / "shard-000" / f"{0:020d}.seg").write_bytes(old)
    wal = open_wal(tmp_path)
    wal.append([[(payload(5), 2, 1)], []])  # written after the upgrade: format 2
    records = wal.shards[0].read(10_000, 0)
    assert [r.payload for r in records] == [payload(i) for i in range(6)]
    assert [(r.samples, r.points) for r in records] == [(3, 3)] * 5 + [(2, 1)]
    assert wal.shards[0].oldest_ms == 1_700_000_000_000
    await wal.close()
