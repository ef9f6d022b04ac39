"""Encryption at rest in the write-ahead log: sealed records, tamper and key checks, rotation."""

from __future__ import annotations

import base64
import logging
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metricgate.components import default_registry
from metricgate.config import load_config_text
from metricgate.errors import ConfigError
from metricgate.pipeline.encryption import Keyring
from metricgate.pipeline.persistent_queue import PersistentQueue
from metricgate.pipeline.wal import WriteAheadLog
from metricgate.pipeline.wal_records import HEADER, SEGMENT_HEADER_SIZE, Record
from tests.receivers.otlp_data import snapshot
from tests.support.batches import number_batch
from tests.support.wal import flip_body_byte, rewrite_record, storage

KEY_1, KEY_2, KEY_3 = os.urandom(32), os.urandom(32), os.urandom(32)
SECRET = b'tenant="team-secret-label-value"'


def open_wal(
    path: Path, keyring: Keyring | None, shards: int = 1, **kwargs: object
) -> WriteAheadLog:
    options: dict[str, object] = {
        "max_disk_bytes": 1 << 22,
        "fsync": "never",
        "segment_bytes": 4096,
    }
    options.update(kwargs)
    drops: dict[str, list[int]] = {}

    def on_drop(reason: str, records: int, points: int) -> None:
        counts = drops.setdefault(reason, [0, 0])
        counts[0] += records
        counts[1] += points

    wal = WriteAheadLog(path, shards, keyring=keyring, on_drop=on_drop, **options)  # type: ignore[arg-type]
    wal.drops = drops  # type: ignore[attr-defined]
    return wal


def drops(wal: WriteAheadLog, reason: str = "integrity") -> list[int]:
    found: dict[str, list[int]] = wal.drops  # type: ignore[attr-defined]
    return found.get(reason, [0, 0])


def payload(i: int) -> bytes:
    return SECRET + f" sample {i:06d} ".encode() * 4


def drain(wal: WriteAheadLog, shard: int = 0) -> list[Record]:
    """Read everything, acknowledging as a lane does; every record, intact or not."""
    log = wal.shards[shard]
    out: list[Record] = []
    while records := log.read(10_000, 0):
        out.extend(records)
        log.ack(records[-1].end)
    return out


def segment_files(path: Path) -> list[Path]:
    return sorted(path.rglob("*.seg"))


async def test_sealed_records_round_trip_and_the_files_hold_no_plaintext(tmp_path: Path) -> None:
    wal = open_wal(tmp_path / "sealed", Keyring(KEY_1))
    for i in range(60):
        wal.append([[(payload(i), 2, 1, b"team-a" if i % 2 else b"")]])
    records = drain(wal)
    assert [r.payload for r in records] == [payload(i) for i in range(60)]
    assert [r.tag for r in records] == [b"team-a" if i % 2 else b"" for i in range(60)]
    assert all(r.intact and (r.samples, r.points) == (2, 1) for r in records)
    await wal.close()

    plain = open_wal(tmp_path / "plain", None)
    plain.append([[(payload(0), 1, 1, b"team-a")]])
    await plain.close()

    sealed_files = segment_files(tmp_path / "sealed")
    assert len(sealed_files) >= 1
    for file in sealed_files:  # a reader of the disk learns neither label values nor tenants
        data = file.read_bytes()
        assert SECRET not in data and b"sample 0000" not in data and b"team-a" not in data
    assert SECRET in segment_files(tmp_path / "plain")[0].read_bytes()  # the check can fail


async def test_reads_stop_where_the_tenant_changes(tmp_path: Path) -> None:
    wal = open_wal(tmp_path, Keyring(KEY_1))
    wal.append(
        [[(b"a1", 1, 1, b"a"), (b"a2", 1, 1, b"a"), (b"b1", 1, 1, b"b"), (b"a3", 1, 1, b"a")]]
    )
    log = wal.shards[0]
    runs = []
    while records := log.read(100, 0):
        runs.append([r.payload for r in records])
        log.ack(records[-1].end)
    assert runs == [[b"a1", b"a2"], [b"b1"], [b"a3"]]
    await wal.close()


def more_points(fields: list[int], body: bytes) -> tuple[list[int], bytes]:
    fields[5] += 100
    return fields, body


@pytest.mark.parametrize("change", [flip_body_byte, more_points], ids=["body", "counts"])
async def test_an_altered_record_is_detected_skipped_counted_and_logged(
    tmp_path: Path, change: object, caplog: pytest.LogCaptureFixture
) -> None:
    keyring = Keyring(KEY_1)
    wal = open_wal(tmp_path, keyring)
    for i in range(5):
        wal.append([[(payload(i), 1, 3)]])
    await wal.close()
    rewrite_record(segment_files(tmp_path)[0], 2, change)

    wal = open_wal(tmp_path, keyring)
    with caplog.at_level(logging.ERROR):
        records = drain(wal)
    assert [r.payload for r in records if r.intact] == [payload(i) for i in (0, 1, 3, 4)]
    assert [r.intact for r in records] == [True, True, False, True, True]
    assert records[2].payload == b""  # never replayed
    assert drops(wal) == [1, 3 + (100 if change is more_points else 0)]
    assert drops(wal, "corrupt") == [0, 0]  # the CRC holds: only authentication tells
    assert "record failed authentication" in caplog.text
    assert wal.pending_bytes == 0  # acknowledged past it
    await wal.close()


async def test_a_record_moved_to_another_place_does_not_open(tmp_path: Path) -> None:
    keyring = Keyring(KEY_1)
    wal = open_wal(tmp_path, keyring)
    for i in range(3):
        wal.append([[(payload(i), 1, 1)]])
    await wal.close()
    file = segment_files(tmp_path)[0]
    data = file.read_bytes()
    size = HEADER.size + HEADER.unpack_from(data, SEGMENT_HEADER_SIZE)[1]
    first = data[SEGMENT_HEADER_SIZE : SEGMENT_HEADER_SIZE + size]
    second = data[SEGMENT_HEADER_SIZE + size : SEGMENT_HEADER_SIZE + 2 * size]
    # Swap records 0 and 1: each frame and CRC is valid, each sealed for the other's place.
    swapped = data[:SEGMENT_HEADER_SIZE] + second + first + data[SEGMENT_HEADER_SIZE + 2 * size :]
    file.write_bytes(swapped)

    wal = open_wal(tmp_path, keyring)
    records = drain(wal)
    assert [r.intact for r in records] == [False, False, True]
    assert records[2].payload == payload(2)
    await wal.close()


async def test_another_key_opens_nothing_and_everything_is_acknowledged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    wal = open_wal(tmp_path, Keyring(KEY_1))
    for i in range(100):  # several segments
        wal.append([[(payload(i), 1, 2)]])
    segments = len(wal.shards[0].segments)
    assert segments > 2
    await wal.close()

    wal = open_wal(tmp_path, Keyring(KEY_2))
    with caplog.at_level(logging.ERROR):
        records = drain(wal)
    assert len(records) == 100 and not any(r.intact for r in records)
    assert drops(wal) == [100, 200]
    # One line per segment, naming what is wrong, not one per record; no key material.
    lines = [r for r in caplog.records if "failed authentication" in r.getMessage()]
    assert len(lines) == segments
    assert "previous_key_files" in str(lines[0].__dict__.get("reason"))
    assert KEY_1.hex() not in caplog.text and KEY_2.hex() not in caplog.text
    assert wal.pending_bytes == 0
    await wal.close()


async def test_key_rotation_round_trip(tmp_path: Path) -> None:
    wal = open_wal(tmp_path, Keyring(KEY_1))
    for i in range(10):
        wal.append([[(payload(i), 1, 1)]])
    old_segments = [s.path for s in wal.shards[0].segments]
    await wal.close()

    # Rotate: the new key seals what is written from now on, the old one still opens the rest.
    wal = open_wal(tmp_path, Keyring(KEY_2, [KEY_1]))
    for i in range(10, 20):
        wal.append([[(payload(i), 1, 1)]])
    new_segments = [s.path for s in wal.shards[0].segments if s.path not in old_segments]
    assert new_segments, "records of the new key must not go into a segment of the old one"
    for path in new_segments:
        assert path.read_bytes()[8:16] == Keyring(KEY_2).current_id
    records = drain(wal)
    assert [r.payload for r in records] == [payload(i) for i in range(20)]
    assert drops(wal) == [0, 0]
    for i in range(20, 25):
        wal.append([[(payload(i), 1, 1)]])
    await wal.close()

    # Once the old segments are consumed, the old key can go.
    wal = open_wal(tmp_path, Keyring(KEY_3, [KEY_2]))
    assert [r.payload for r in drain(wal)] == [payload(i) for i in range(20, 25)]
    assert drops(wal) == [0, 0]
    await wal.close()


async def test_a_restart_with_the_same_key_keeps_appending_to_the_segment(tmp_path: Path) -> None:
    keyring = Keyring(KEY_1)
    wal = open_wal(tmp_path, keyring)
    wal.append([[(b"one", 1, 1)]])
    await wal.close()
    wal = open_wal(tmp_path, keyring)
    wal.append([[(b"two", 1, 1)]])
    assert len(segment_files(tmp_path)) == 1
    assert [r.payload for r in drain(wal)] == [b"one", b"two"]
    await wal.close()


async def test_plain_records_in_an_encrypted_queue_are_refused_and_vice_versa(
    tmp_path: Path,
) -> None:
    plain = open_wal(tmp_path / "a", None)
    plain.append([[(payload(1), 1, 1)]])
    await plain.close()
    # Records anyone could have written are not replayed once the queue is encrypted.
    wal = open_wal(tmp_path / "a", Keyring(KEY_1))
    wal.append([[(payload(2), 1, 1)]])
    records = drain(wal)
    assert [(r.intact, r.payload) for r in records] == [(False, b""), (True, payload(2))]
    assert drops(wal) == [1, 1]
    await wal.close()

    sealed = open_wal(tmp_path / "b", Keyring(KEY_1))
    sealed.append([[(payload(1), 1, 1)]])
    await sealed.close()
    wal = open_wal(tmp_path / "b", None)
    wal.append([[(payload(2), 1, 1)]])
    records = drain(wal)
    assert [(r.intact, r.payload) for r in records] == [(False, b""), (True, payload(2))]
    await wal.close()


async def test_a_torn_sealed_tail_is_cut_like_a_plain_one(tmp_path: Path) -> None:
    keyring = Keyring(KEY_1)
    wal = open_wal(tmp_path, keyring)
    for i in range(3):
        wal.append([[(payload(i), 1, 1)]])
    await wal.close()
    file = segment_files(tmp_path)[0]
    file.write_bytes(file.read_bytes()[:-7])
    wal = open_wal(tmp_path, keyring)
    assert drops(wal, "truncated")[0] == 1
    wal.append([[(payload(3), 1, 1)]])
    assert [r.payload for r in drain(wal)] == [payload(i) for i in (0, 1, 3)]
    assert drops(wal) == [0, 0]
    await wal.close()


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    pieces=st.lists(
        st.tuples(
            st.binary(max_size=3000),
            st.integers(0, 50),
            st.integers(0, 50),
            st.sampled_from([b"", b"a", b"tenant-b"]),
            st.integers(0, 1),
        ),
        min_size=1,
        max_size=40,
    ),
    segment_bytes=st.sampled_from([4096, 8192, 1 << 20]),
)
def test_any_records_round_trip_sealed(
    tmp_path_factory: pytest.TempPathFactory,
    pieces: list[tuple[bytes, int, int, bytes, int]],
    segment_bytes: int,
) -> None:
    import asyncio

    async def run() -> None:
        path = tmp_path_factory.mktemp("wal")
        wal = open_wal(path, Keyring(KEY_1), shards=2, segment_bytes=segment_bytes)
        for data, samples, points, tag, shard in pieces:
            per_shard: list[list[tuple[bytes, int, int, bytes]]] = [[], []]
            per_shard[shard].append((data, samples, points, tag))
            wal.append(per_shard)
        await wal.close()
        wal = open_wal(path, Keyring(KEY_2, [KEY_1]), shards=2, segment_bytes=segment_bytes)
        for shard in (0, 1):
            expected = [(d, s, p, t) for d, s, p, t, n in pieces if n == shard]
            got = [(r.payload, r.samples, r.points, r.tag) for r in drain(wal, shard)]
            assert got == expected
        assert drops(wal) == [0, 0]
        await wal.close()

    asyncio.run(run())


def key_file(path: Path, key: bytes) -> str:
    path.write_bytes(base64.b64encode(key) + b"\n")
    path.chmod(0o600)
    return str(path)


async def test_the_sending_queue_seals_batches_and_acknowledges_records_that_fail(
    tmp_path: Path,
) -> None:
    keys = tmp_path / "keys"
    keys.mkdir()
    settings = {"encryption": {"key_file": key_file(keys / "k1", KEY_1)}}
    batch = number_batch({"team-secret-label-value": 1.0, "b": 2.0})
    queue = PersistentQueue(tmp_path / "q", storage(tmp_path / "q", **settings), "otlp")
    queue.open()
    for _ in range(3):
        queue.append(batch)
    await queue.close()
    assert not any(b"team-secret-label-value" in f.read_bytes() for f in segment_files(tmp_path))
    rewrite_record(segment_files(tmp_path / "q")[0], 1, flip_body_byte)

    drops_seen: list[tuple[str, int, int]] = []
    queue = PersistentQueue(
        tmp_path / "q",
        storage(tmp_path / "q", **settings),
        "otlp",
        lambda *drop: drops_seen.append(drop),
    )
    queue.open()
    try:
        assert queue.pending_records == 3
        for _ in range(2):  # the altered one is never handed out
            entry = await queue.get()
            assert entry is not None
            assert snapshot(entry.batch) == snapshot(batch)
            queue.done(entry)
        assert drops_seen == [("integrity", 1, 2)]
        assert queue.pending_records == 0 and queue.pending_bytes == 0
    finally:
        await queue.close()


def test_unusable_key_files_are_config_errors_naming_the_key() -> None:
    problems = processor_free_config_problems(
        "sending_queue: {storage: {directory: /tmp/q, encryption: {key_file: /nonexistent/k}}}"
    )
    assert any(
        "exporters.otlp.sending_queue.storage.encryption: key_file: cannot read /nonexistent/k"
        in problem
        for problem in problems
    ), problems


def processor_free_config_problems(exporter_body: str) -> list[str]:
    text = f"""
receivers: {{otlp: {{protocols: {{http: {{endpoint: "127.0.0.1:0"}}}}}}}}
exporters: {{otlp: {{endpoint: "http://127.0.0.1:1", {exporter_body}}}}}
service: {{pipelines: {{metrics: {{receivers: [otlp], exporters: [otlp]}}}}}}
"""
    try:
        load_config_text(text, default_registry(), {})
    except ConfigError as error:
        return list(error.problems)
    raise AssertionError("accepted")
