"""The on-disk sending queue on its own: round trip, order, acks across restarts, corruption."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from metricgate.errors import QueueFullError
from metricgate.model import FLAG_NO_RECORDED_VALUE, Batch, MetricKind, Temporality
from metricgate.pipeline.persistent_queue import (
    Entry,
    PersistentQueue,
    count_records,
)
from metricgate.pipeline.wal import HEADER
from tests.receivers.otlp_data import snapshot
from tests.support.batches import number_batch
from tests.support.otlp_batches import every_kind_batch
from tests.support.wal import storage

T = 1_700_000_000_000_000_000


def open_queue(
    path: Path, drops: list[tuple[str, int, int]] | None = None, **settings: object
) -> PersistentQueue:
    def dropped(reason: str, records: int, points: int) -> None:
        if drops is not None:
            drops.append((reason, records, points))

    queue = PersistentQueue(path / "otlp", storage(path, **settings), "otlp", dropped)
    queue.open()
    return queue


def step_batch(step: int) -> Batch:
    return number_batch({f"s{i}": float(step) for i in range(3)}, timestamp=T + step * 10**9)


def step_of(entry: Entry) -> int:
    (group,) = entry.batch.metrics
    return int(group.values[0])  # type: ignore[arg-type]


async def test_every_kind_round_trips_through_disk(tmp_path: Path) -> None:
    sent = every_kind_batch()
    queue = open_queue(tmp_path)
    try:
        queue.append(sent)
        entry = await queue.get()
        assert entry is not None
        assert entry.points == sent.point_count()
        assert snapshot(entry.batch) == snapshot(sent)
    finally:
        await queue.close()
    # The data really exercises what matters: all kinds, both temporalities, exemplars, flags.
    kinds = {group.metric.kind for group in sent}
    assert kinds == set(MetricKind)
    assert {Temporality.DELTA, Temporality.CUMULATIVE} <= {g.metric.temporality for g in sent}
    assert any(group.exemplars for group in sent)
    assert any(f & FLAG_NO_RECORDED_VALUE for group in sent for f in group.flags)
    assert any(st for group in sent for st in group.start_timestamps)


async def test_records_come_back_in_order_and_acked_ones_never_again(tmp_path: Path) -> None:
    queue = open_queue(tmp_path)
    for step in range(10):
        queue.append(step_batch(step))
    assert queue.pending_records == 10
    entries = [await queue.get() for _ in range(5)]
    assert [step_of(e) for e in entries if e is not None] == [0, 1, 2, 3, 4]
    for entry in entries[:3]:
        assert entry is not None
        queue.done(entry)
    assert entries[4] is not None
    queue.done(entries[4])  # out of order: 3 is unfinished, so the ack stops before it
    assert queue.pending_records == 7
    await queue.close()

    queue = open_queue(tmp_path)
    try:
        assert queue.pending_records == 7
        replayed = []
        while queue.pending_records:
            entry = await queue.get()
            assert entry is not None
            replayed.append(step_of(entry))
            queue.done(entry)
        # 3 was read but never finished, so it comes again (4 with it: at-least-once).
        assert replayed == [3, 4, 5, 6, 7, 8, 9]
        assert queue.pending_bytes == 0
    finally:
        await queue.close()

    queue = open_queue(tmp_path)
    try:
        assert queue.pending_records == 0 and queue.pending_bytes == 0
        queue.append(step_batch(42))
        entry = await queue.get()
        assert entry is not None and step_of(entry) == 42
    finally:
        await queue.close()


async def test_full_queue_refuses(tmp_path: Path) -> None:
    queue = open_queue(tmp_path, max_disk_bytes=4096)
    try:
        with pytest.raises(QueueFullError):
            for step in range(100):
                queue.append(step_batch(step))
        kept = queue.pending_records
        assert 0 < kept < 100
        assert not queue.has_room() or queue.pending_bytes < 4096
        assert queue.pending_bytes <= 4096
        # Delivering frees room again.
        entry = await queue.get()
        assert entry is not None
        queue.done(entry)
        queue.append(step_batch(100))
    finally:
        await queue.close()


async def test_drop_oldest_drops_whole_segments_and_counts_them(tmp_path: Path) -> None:
    drops: list[tuple[str, int, int]] = []
    queue = open_queue(
        tmp_path, drops, max_disk_bytes=16384, segment_bytes=4096, full_policy="drop_oldest"
    )
    try:
        for step in range(200):
            queue.append(step_batch(step))
        assert queue.pending_bytes <= 16384
        dropped_records = sum(r for reason, r, _ in drops if reason == "queue_full")
        dropped_points = sum(p for reason, _, p in drops if reason == "queue_full")
        assert dropped_records > 0 and dropped_points == 3 * dropped_records
        assert queue.pending_records == 200 - dropped_records
        first = await queue.get()
        assert first is not None and step_of(first) == dropped_records  # the oldest kept
        steps = [step_of(first)]
        queue.done(first)
        while queue.pending_records:
            entry = await queue.get()
            assert entry is not None
            steps.append(step_of(entry))
            queue.done(entry)
        assert steps == list(range(dropped_records, 200))
    finally:
        await queue.close()


async def test_corrupt_record_is_skipped_and_counted(tmp_path: Path) -> None:
    queue = open_queue(tmp_path)
    for step in range(5):
        queue.append(step_batch(step))
    await queue.close()
    (segment,) = (tmp_path / "otlp").rglob("*.seg")
    data = bytearray(segment.read_bytes())
    record_size = len(data) // 5
    data[2 * record_size + HEADER.size + 10] ^= 0xFF  # the third record's payload
    segment.write_bytes(bytes(data))

    drops: list[tuple[str, int, int]] = []
    queue = open_queue(tmp_path, drops)
    try:
        assert count_records(queue.shard) == 4
        steps = []
        for _ in range(4):
            entry = await queue.get()
            assert entry is not None
            steps.append(step_of(entry))
            queue.done(entry)
        assert steps == [0, 1, 3, 4]
        assert ("corrupt", 1, 0) in drops
        assert queue.pending_records == 0
    finally:
        await queue.close()


async def test_torn_tail_is_cut_and_the_rest_replayed(tmp_path: Path) -> None:
    queue = open_queue(tmp_path)
    for step in range(3):
        queue.append(step_batch(step))
    await queue.close()
    (segment,) = (tmp_path / "otlp").rglob("*.seg")
    data = segment.read_bytes()
    segment.write_bytes(data[: len(data) - 7])  # a write cut short by a crash

    drops: list[tuple[str, int, int]] = []
    queue = open_queue(tmp_path, drops)
    try:
        assert queue.pending_records == 2
        entries = [await queue.get() for _ in range(2)]
        assert [step_of(e) for e in entries if e is not None] == [0, 1]
        assert [d[0] for d in drops] == ["truncated"]
    finally:
        await queue.close()


async def test_a_second_process_cannot_open_the_same_directory(tmp_path: Path) -> None:
    queue = open_queue(tmp_path)
    try:
        with pytest.raises(RuntimeError, match="in use"):
            open_queue(tmp_path)
    finally:
        await queue.close()


async def test_stop_wakes_a_waiting_reader(tmp_path: Path) -> None:
    queue = open_queue(tmp_path)
    try:
        reader = asyncio.create_task(queue.get())
        # Give the reader time to block on the empty queue: the waiting reader is what is under
        # test, and it shows nothing to poll for while it waits.
        await asyncio.sleep(0.01)
        assert not reader.done()
        queue.stop()
        assert await asyncio.wait_for(reader, 1.0) is None
    finally:
        await queue.close()


async def test_record_that_does_not_decode_is_dropped_counted_and_acknowledged(
    tmp_path: Path,
) -> None:
    drops: list[tuple[str, int, int]] = []
    queue = open_queue(tmp_path, drops)
    try:
        assert queue.wal is not None
        queue.wal.append([[(b"\xff\xff not protobuf", 3, 3)]])
        queue.pending_records += 1
        queue.append(step_batch(1))
        entry = await queue.get()
        assert entry is not None and step_of(entry) == 1
        assert drops == [("decode", 1, 3)]
        queue.done(entry)
        assert queue.pending_records == 0 and queue.pending_bytes == 0
    finally:
        await queue.close()
