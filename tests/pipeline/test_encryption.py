"""Encryption at rest: round trips, tamper and wrong-key detection, key rotation, key files."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from metricgate.errors import ConfigError, RecordIntegrityError, UnknownKeyError
from metricgate.pipeline.encryption import (
    HEADER_SIZE,
    OVERHEAD,
    EncryptionConfig,
    Keyring,
    write_key_file,
)

KEY_1, KEY_2 = os.urandom(32), os.urandom(32)


@given(record=st.binary(max_size=2048), associated=st.binary(max_size=16))
def test_round_trip_hides_the_record(record: bytes, associated: bytes) -> None:
    keyring = Keyring(KEY_1)
    sealer = keyring.sealer()
    sealed = sealer.seal(record, associated)
    assert len(sealed) == len(record) + OVERHEAD and len(sealer.header) == HEADER_SIZE
    if len(record) >= 8:
        assert record not in sealed
    assert keyring.opener(sealer.header).open(sealed, associated) == record


@given(
    record=st.binary(min_size=1, max_size=256),
    position=st.integers(min_value=0),
    flip=st.integers(min_value=1, max_value=255),
)
def test_any_altered_byte_is_detected(record: bytes, position: int, flip: int) -> None:
    keyring = Keyring(KEY_1)
    sealer = keyring.sealer()
    sealed = bytearray(sealer.seal(record, b"seg-1/rec-7"))
    sealed[position % len(sealed)] ^= flip
    with pytest.raises(RecordIntegrityError):
        keyring.opener(sealer.header).open(bytes(sealed), b"seg-1/rec-7")


def test_truncated_moved_and_foreign_records_are_detected() -> None:
    keyring = Keyring(KEY_1)
    sealer = keyring.sealer()
    opener = keyring.opener(sealer.header)
    sealed = sealer.seal(b"batch bytes", b"seg-1/rec-1")
    with pytest.raises(RecordIntegrityError, match="truncated"):
        opener.open(sealed[:20], b"seg-1/rec-1")
    with pytest.raises(RecordIntegrityError, match="failed authentication"):
        opener.open(sealed[:-1], b"seg-1/rec-1")
    with pytest.raises(RecordIntegrityError):
        opener.open(sealed, b"seg-2/rec-1")  # moved to another segment
    with pytest.raises(UnknownKeyError, match="no configured key file has"):
        Keyring(KEY_2).opener(sealer.header)  # another key: refused by id, never decrypted
    forged_header = sealer.header[:8] + Keyring(KEY_2).current_id
    with pytest.raises(RecordIntegrityError):
        Keyring(KEY_1, [KEY_2]).opener(forged_header).open(sealed, b"seg-1/rec-1")
    with pytest.raises(RecordIntegrityError, match="not an encrypted segment header"):
        keyring.opener(b"plain old segment")


def test_rotation_new_key_for_new_segments_old_keys_still_read() -> None:
    before = Keyring(KEY_1)
    old_segment = before.sealer()
    old_record = old_segment.seal(b"written before the rotation")
    after = Keyring(KEY_2, previous=[KEY_1])
    new_segment = after.sealer()
    assert new_segment.header != old_segment.header
    assert after.opener(old_segment.header).open(old_record) == b"written before the rotation"
    assert after.opener(new_segment.header).open(new_segment.seal(b"new")) == b"new"
    with pytest.raises(UnknownKeyError):
        Keyring(KEY_2).opener(old_segment.header)  # the old key was dropped too early


def test_key_files(tmp_path: Path) -> None:
    raw, hexed, b64 = tmp_path / "raw.key", tmp_path / "hex.key", tmp_path / "b64.key"
    raw.write_bytes(KEY_1)
    hexed.write_text(KEY_2.hex() + "\n")
    made = write_key_file(str(b64))
    assert stat.S_IMODE(os.stat(b64).st_mode) == 0o600
    assert base64.b64decode(b64.read_bytes()) == made
    with pytest.raises(FileExistsError):
        write_key_file(str(b64))
    keyring = Keyring.from_config(
        EncryptionConfig(key_file=str(b64), previous_key_files=[str(raw), str(hexed)])
    )
    for key in (KEY_1, KEY_2, made):
        sealer = Keyring(key).sealer()
        assert keyring.opener(sealer.header).open(sealer.seal(b"x")) == b"x"
    assert made.hex() not in repr(keyring) and "Keyring(current" in repr(keyring)

    short = tmp_path / "short.key"
    short.write_text("tooshort\n")
    with pytest.raises(ConfigError, match=r"queue\.encryption\.previous_key_files\[0\]: .*256-bit"):
        Keyring.from_config(
            EncryptionConfig(key_file=str(b64), previous_key_files=[str(short)]), "queue.encryption"
        )
    with pytest.raises(ConfigError, match=r"encryption\.key_file: cannot read .*missing"):
        Keyring.from_config(EncryptionConfig(key_file=str(tmp_path / "missing")))
