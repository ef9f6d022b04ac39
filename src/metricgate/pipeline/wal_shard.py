"""One shard of the write-ahead log: its segments, read cursor, ack offset and recovery.

`wal.py` holds the shards of one exporter together (directory lock, `meta.json`, disk bound,
fsync timer); this module is what one shard does on disk under `shard-NNN/`: segment files named
by the logical offset of their first byte (`00000000000000000000.seg`) and an `ack` file (the
acknowledged offset, 8 bytes + CRC32, replaced atomically).

Records are framed as `wal_records.py` describes: a header with a CRC, then a body of an opaque
tag (the ordered lanes keep the tenant there) and the payload. `samples` bounds a request read
back (remote-write samples), `points` is the data points the record carries (what the sent /
send-failed counters count). Formats 1 and 2 of earlier versions are still read.
Segments roll at `segment_bytes`; records never span segments.

Recovery: segments wholly below the ack offset are deleted, the newest segment is scanned and cut
after its last valid record (a torn tail from a crash). A corrupt record found while reading is
skipped by scanning for the next valid magic + CRC, logged and counted; it never stops the shard.

Encryption at rest (`keyring`): each new segment starts with the header naming the current key,
and every record written into it is sealed (`wal_records.py` says what is authenticated). A
segment is only appended to while it is sealed with the current key (a restart with another key,
or with encryption switched on or off, begins a new segment). A record that does not open (altered,
moved, another key not configured, or a plain record in an encrypted queue, which could have been
planted) is handed out as not `intact`, with no payload, counted as dropped (`integrity`) and logged
once per segment: the reader acknowledges past it and it is never replayed.

Longer than most modules, and kept whole on purpose: `ShardLog` is one class whose recovery,
reading, acknowledging and dropping all move the same segment list, read cursor and ack offset;
split across modules, the invariant below could no longer be checked in one read.

Invariant: a shard's records are read in append order, and the ack offset only moves forward.
"""

from __future__ import annotations

import asyncio
import logging
import os
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from metricgate.errors import RecordIntegrityError
from metricgate.pipeline.encryption import Keyring, SegmentOpener
from metricgate.pipeline.wal_records import (
    HEADER,
    MAX_RECORD_BYTES,
    SEAL_OVERHEAD,
    SEGMENT_HEADER_SIZE,
    SEGMENT_MAGIC,
    Record,
    associated,
    encode,
    find_magic,
    header_at,
    parse,
)

log = logging.getLogger("metricgate.pipeline.wal")

__all__ = ["INTEGRITY", "FsyncPolicy", "Segment", "ShardLog", "WalStats", "fsync_dir"]

_ACK = struct.Struct("<QI")
_READ_CHUNK = 1024 * 1024
INTEGRITY = "integrity"
"""Drop reason of records that fail authentication in an encrypted queue."""

FsyncPolicy = Literal["always", "batch", "never"]


@dataclass
class Segment:
    """One segment file; what its start says (plain or sealed, and by which key) is read once."""

    base: int
    path: Path
    size: int
    data_start: int = -1
    """Where its first record starts: after the header of a sealed segment; -1 until known."""
    opener: SegmentOpener | None = None
    refusal: str = ""
    """Why none of its records can be replayed (encryption mismatch); "" if they can."""
    reported: bool = False

    @property
    def end(self) -> int:
        return self.base + self.size


@dataclass
class WalStats:
    """Counters the exporter turns into telemetry (records and points dropped, by reason)."""

    dropped_records: dict[str, int] = field(default_factory=dict)
    dropped_points: dict[str, int] = field(default_factory=dict)
    corrupt_bytes: int = 0
    listener: Callable[[str, int, int], None] | None = None

    def drop(self, reason: str, records: int, points: int) -> None:
        self.dropped_records[reason] = self.dropped_records.get(reason, 0) + records
        self.dropped_points[reason] = self.dropped_points.get(reason, 0) + points
        if self.listener is not None:
            self.listener(reason, records, points)


class ShardLog:
    """One shard's append-only log, read cursor and ack offset."""

    def __init__(
        self,
        path: Path,
        segment_bytes: int,
        fsync: FsyncPolicy,
        stats: WalStats,
        name: str,
        *,
        index: int = 0,
        keyring: Keyring | None = None,
    ) -> None:
        self.path = path
        self.segment_bytes = segment_bytes
        self.fsync = fsync
        self.stats = stats
        self.name = name
        self.index = index
        """The shard's number: sealed records are authenticated with it."""
        self.keyring = keyring
        self._sealer = keyring.sealer() if keyring is not None else None
        self._extra = HEADER.size + (SEAL_OVERHEAD if keyring is not None else 0)
        self._peeked: tuple[int, Record] | None = None
        """A record opened by a read that stopped before it (its offset), for the next read."""
        self.segments: list[Segment] = []
        self.acked = 0
        self.persisted_ack = 0
        """The ack offset last written to the `ack` file (`acked` may be ahead of it)."""
        self.read_pos = 0
        self.oldest_ms: int | None = None
        """Append time of the oldest unacknowledged record (None when there is none)."""
        self.has_data = asyncio.Event()
        self.dirty = False
        self._fd: int | None = None
        self._open()

    # -- recovery ----------------------------------------------------------------------------

    def _open(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        for tmp in self.path.glob("*.tmp"):
            tmp.unlink(missing_ok=True)
        found: list[Segment] = []
        for file in sorted(self.path.glob("*.seg")):
            try:
                base = int(file.stem)
            except ValueError:
                log.warning("ignoring a stray file in the queue", extra={"file": str(file)})
                continue
            found.append(Segment(base, file, file.stat().st_size))
        found.sort(key=lambda s: s.base)
        acked = self._read_ack()
        if acked is None:
            acked = found[0].base if found else 0
        if found:
            acked = max(acked, found[0].base)
        for segment in found:
            if segment.end <= acked and segment is not found[-1]:
                segment.path.unlink(missing_ok=True)
            else:
                self.segments.append(segment)
        if self.segments:
            self._repair_tail(self.segments[-1])
            acked = min(acked, self.segments[-1].end)
        self.acked = self.persisted_ack = self.read_pos = acked
        if not self.segments:
            self.segments.append(self._new_segment(acked))
        self._fd = os.open(self.segments[-1].path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._refresh_oldest()
        if self.pending_bytes:
            self.has_data.set()

    def _read_ack(self) -> int | None:
        path = self.path / "ack"
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        if len(raw) == _ACK.size:
            offset, crc = _ACK.unpack(raw)
            if zlib.crc32(raw[:8]) == crc:
                return int(offset)
        self.stats.drop("corrupt", 0, 0)
        log.error(
            "persistent queue: ack file is corrupt; replaying the shard from its oldest segment",
            extra={"file": str(path)},
        )
        return None

    def _repair_tail(self, segment: Segment) -> None:
        """Cut the newest segment after its last valid record (a write torn by a crash)."""
        data = segment.path.read_bytes()
        sealed = data[:4] == SEGMENT_MAGIC and len(data) >= SEGMENT_HEADER_SIZE
        pos = good = SEGMENT_HEADER_SIZE if sealed else 0
        while pos < len(data):
            record, size = parse(data, pos)
            if record is not None:
                pos += size
                good = pos
                continue
            nxt = find_magic(data, pos + 1)
            if nxt < 0:
                break
            pos = nxt
        if good < len(data):
            self.stats.drop("truncated", 1, 0)
            self.stats.corrupt_bytes += len(data) - good
            log.error(
                "persistent queue: torn or corrupt tail cut off",
                extra={"file": str(segment.path), "bytes": len(data) - good, "kept": good},
            )
            with segment.path.open("r+b") as handle:
                handle.truncate(good)
                os.fsync(handle.fileno())
            segment.size = good

    def _new_segment(self, base: int) -> Segment:
        path = self.path / f"{base:020d}.seg"
        path.touch()
        if self.fsync != "never":
            fsync_dir(self.path)
        return Segment(base, path, 0)

    # -- what a segment's start says (plain or sealed) ------------------------------------------

    def data_start(self, segment: Segment) -> int:
        """Where `segment`'s first record starts (after its header when sealed)."""
        if segment.data_start < 0:
            self._inspect(segment)
        return max(segment.data_start, 0)

    def _inspect(self, segment: Segment) -> None:
        if segment.size == 0:
            return  # empty: whoever writes first decides
        head = _pread(segment.path, 0, SEGMENT_HEADER_SIZE)
        keyring = self.keyring
        if head[:4] == SEGMENT_MAGIC and len(head) == SEGMENT_HEADER_SIZE:
            segment.data_start = SEGMENT_HEADER_SIZE
            if keyring is None:
                segment.refusal = (
                    "the segment is encrypted and sending_queue.storage.encryption is not set"
                )
                return
            try:
                segment.opener = keyring.opener(head)
            except RecordIntegrityError as exc:
                segment.refusal = str(exc)
            return
        segment.data_start = 0
        if keyring is not None:
            segment.refusal = (
                "the segment was written without encryption; an encrypted queue replays only "
                "records it can authenticate"
            )

    def _writable(self, segment: Segment) -> bool:
        """Whether new records may go into `segment`: it is empty, or sealed as they would be."""
        if segment.size == 0:
            return True
        self.data_start(segment)
        if self._sealer is None:
            return segment.data_start == 0 and not segment.refusal
        return segment.opener is not None and segment.opener.header == self._sealer.header

    # -- writing -----------------------------------------------------------------------------

    @property
    def end(self) -> int:
        return self.segments[-1].end

    @property
    def pending_bytes(self) -> int:
        return self.end - self.acked

    @property
    def disk_bytes(self) -> int:
        return sum(s.size for s in self.segments)

    def record_size(self, payload: int, tag: int) -> int:
        """Bytes a record of a `payload`-byte payload and a `tag`-byte tag takes on disk."""
        return self._extra + payload + tag

    def append(
        self, payload: bytes, samples: int, points: int, time_ms: int, tag: bytes = b""
    ) -> None:
        assert self._fd is not None
        active = self.segments[-1]
        size = self.record_size(len(payload), len(tag))
        if active.size and (active.size + size > self.segment_bytes or not self._writable(active)):
            if self.fsync != "never":
                os.fsync(self._fd)
            os.close(self._fd)
            active = self._new_segment(active.end)
            self.segments.append(active)
            self._fd = os.open(active.path, os.O_WRONLY | os.O_APPEND)
        sealer = self._sealer
        if sealer is None:
            record = encode(tag, payload, samples, time_ms, points, len(tag))
            if not active.size:
                active.data_start = 0
        else:
            head = b""
            if not active.size:
                head = sealer.header
                assert self.keyring is not None
                active.data_start, active.opener = len(head), self.keyring.opener(head)
            associated_data = associated(
                self.index, active.base, active.size + len(head), samples, time_ms, points,
                len(tag),
            )  # fmt: skip
            sealed = sealer.seal(tag + payload if tag else payload, associated_data)
            record = head + encode(b"", sealed, samples, time_ms, points, len(tag))
        written = os.write(self._fd, record)
        while written < len(record):  # rare: a short write on a full disk or a signal
            written += os.write(self._fd, record[written:])
        active.size += len(record)
        if self.oldest_ms is None:
            self.oldest_ms = time_ms
        if self.fsync == "always":
            os.fdatasync(self._fd)
        else:
            self.dirty = True
        self.has_data.set()

    def sync(self) -> None:
        if self.dirty and self._fd is not None:
            self.dirty = False
            os.fdatasync(self._fd)

    def close(self) -> None:
        if self._fd is not None:
            if self.fsync != "never":
                os.fsync(self._fd)
            os.close(self._fd)
            self._fd = None

    # -- reading and acknowledging ----------------------------------------------------------

    def read(self, max_samples: int, max_bytes: int) -> list[Record]:
        """Records from the read cursor on, up to `max_samples` (at least one record), all
        with the same tag (records not `intact` go with any)."""
        out: list[Record] = []
        samples = size = 0
        tag: bytes | None = None
        while self.read_pos < self.end:
            segment = self._segment_at(self.read_pos)
            if segment is None:
                break
            if self.read_pos >= segment.end:
                continue
            start = segment.base + self.data_start(segment)
            if self.read_pos < start:
                self.read_pos = start  # past the segment header
                continue
            chunk = _pread(segment.path, self.read_pos - segment.base, _READ_CHUNK)
            pos = 0
            progressed = False
            while pos < len(chunk):
                record, length = parse(chunk, pos)
                if record is None and not out and not pos:
                    record, length = self._big_record(segment)
                if record is None:
                    break
                record = self._unwrap(segment, record, self.read_pos + pos)
                if (
                    out
                    and record.intact
                    and (
                        samples + record.samples > max_samples
                        or (max_bytes and size + len(record.payload) > max_bytes)
                        or (tag is not None and record.tag != tag)
                    )
                ):
                    self._peeked = (self.read_pos + pos, record)
                    self.read_pos += pos
                    return out
                pos += length
                record.end = self.read_pos + pos
                out.append(record)
                progressed = True
                if record.intact:
                    samples += record.samples
                    size += len(record.payload)
                    tag = record.tag
                else:
                    self._refused(segment, record)
            self.read_pos += pos
            if not progressed:
                self._skip_corrupt(segment)
            if samples >= max_samples:
                break
        if self.read_pos >= self.end:
            self.has_data.clear()
        return out

    def _big_record(self, segment: Segment) -> tuple[Record | None, int]:
        """A record larger than one read chunk, at the cursor: read it whole."""
        head = header_at(_pread(segment.path, self.read_pos - segment.base, HEADER.size), 0)
        if head is None or head[1] > MAX_RECORD_BYTES:
            return None, 0
        return parse(_pread(segment.path, self.read_pos - segment.base, head[0] + head[1]), 0)

    def _unwrap(self, segment: Segment, record: Record, offset: int) -> Record:
        """`record` (read at `offset`) with its tag split off and, if sealed, opened."""
        peeked = self._peeked
        if peeked is not None:
            self._peeked = None
            if peeked[0] == offset:
                return peeked[1]
        body, tag_length = record.payload, record.tag_length
        opener = segment.opener
        if opener is None and not segment.refusal:
            if tag_length:
                record.tag, record.payload = body[:tag_length], body[tag_length:]
            return record
        if opener is None:
            record.error = segment.refusal
        else:
            associated_data = associated(
                self.index, segment.base, offset - segment.base, record.samples,
                record.time_ms, record.points, tag_length,
            )  # fmt: skip
            try:
                body = opener.open(body, associated_data)
            except RecordIntegrityError as exc:
                record.error = str(exc)
            else:
                record.tag, record.payload = body[:tag_length], body[tag_length:]
                return record
        record.payload = b""
        return record

    def _refused(self, segment: Segment, record: Record) -> None:
        """Count a record that did not open; log it once per segment."""
        self.stats.drop(INTEGRITY, 1, record.points)
        if not segment.reported:
            segment.reported = True
            log.error(
                "persistent queue: record failed authentication; skipped, never replayed "
                "(further failures in this segment are counted, not logged)",
                extra={"queue": self.name, "file": str(segment.path), "reason": record.error},
            )

    def _skip_corrupt(self, segment: Segment) -> None:
        """No valid record at the cursor: skip to the next valid one (or the segment's end)."""
        start = self.read_pos
        data = segment.path.read_bytes()
        pos = start - segment.base + 1
        while True:
            nxt = find_magic(data, pos)
            if nxt < 0:
                self.read_pos = segment.end
                break
            if parse(data, nxt)[0] is not None:
                self.read_pos = segment.base + nxt
                break
            pos = nxt + 1
        skipped = self.read_pos - start
        self.stats.drop("corrupt", 1, 0)
        self.stats.corrupt_bytes += skipped
        log.error(
            "persistent queue: corrupt record skipped",
            extra={"queue": self.name, "file": str(segment.path), "bytes": skipped},
        )

    def _segment_at(self, offset: int) -> Segment | None:
        for i, segment in enumerate(self.segments):
            if segment.base <= offset < segment.end:
                return segment
            if offset < segment.base:  # a gap left by dropped segments
                self.read_pos = segment.base
                return segment
            if offset == segment.end and i + 1 < len(self.segments):
                continue
        return None

    @property
    def ack_at_once(self) -> bool:
        """Whether a reader's ack is written as it happens (`fsync: always`); otherwise the
        log's timer writes the offset (`WriteAheadLog`)."""
        return self.fsync == "always"

    def delivered(self, offset: int) -> None:
        """A reader's ack: everything before `offset` was delivered (or given up on), written
        at once with `fsync: always`, else by the log's timer (`ack_at_once`)."""
        self.ack(offset, persist=self.ack_at_once)

    def ack(self, offset: int, *, persist: bool = True) -> None:
        """Everything before `offset` was delivered (or given up on): persist, free segments.

        `persist=False` only moves the offset in memory (the room counts as free at once); the
        next `ack()` with `persist=True` writes it. A crash in between re-sends, never loses.
        """
        self.acked = max(self.acked, offset)
        if not persist or self.acked <= self.persisted_ack:
            return
        offset = self.persisted_ack = self.acked
        raw = struct.pack("<Q", offset)
        tmp = self.path / "ack.tmp"
        with tmp.open("wb") as handle:
            handle.write(raw + struct.pack("<I", zlib.crc32(raw)))
            if self.fsync != "never":
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, self.path / "ack")
        while len(self.segments) > 1 and self.segments[0].end <= offset:
            self.segments.pop(0).path.unlink(missing_ok=True)
        if self.fsync != "never":
            fsync_dir(self.path)
        self._refresh_oldest()

    def _refresh_oldest(self) -> None:
        self.oldest_ms = None
        offset = self.acked
        for segment in self.segments:
            if segment.end > offset:
                at = max(self.data_start(segment), offset - segment.base)
                head = header_at(_pread(segment.path, at, HEADER.size), 0)
                if head is not None:
                    self.oldest_ms = head[2]
                return

    def drop_oldest_segment(self) -> bool:
        """Give up on the oldest sealed segment (counted); False if there is none."""
        if len(self.segments) < 2:
            return False
        segment = self.segments[0]
        data = segment.path.read_bytes()
        pos = max(self.data_start(segment), self.acked - segment.base)
        records = points = 0
        while pos < len(data):
            record, size = parse(data, pos)
            if record is None:
                break
            records += 1
            points += record.points
            pos += size
        self.stats.drop("queue_full", records, points)
        self.read_pos = max(self.read_pos, segment.end)
        self.ack(segment.end)
        return True

    def oldest_sealed_ms(self) -> int | None:
        if len(self.segments) < 2:
            return None
        return self.oldest_ms if self.oldest_ms is not None else 0


def _pread(path: Path, offset: int, size: int) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.pread(fd, size, offset)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
