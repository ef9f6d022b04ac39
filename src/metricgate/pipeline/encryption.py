"""Encryption at rest for persistent queues and WALs: AES-256-GCM per record, keys by id.

A segment starts with a 16-byte header naming the key that sealed it: magic `MGE1`, version 1,
three reserved bytes, and the key id (8 bytes: HMAC-SHA256 of the key with a fixed label, so the id
tells nothing about the key). Each record is `nonce (12 bytes) || ciphertext || tag (16)`,
authenticated together with the segment header and the caller's `associated` bytes (the writer
should pass the segment number and the record's sequence, so records cannot be moved between
segments or reordered unnoticed). Rotation: a new `key_file` seals new segments; keys listed in
`previous_key_files` still open old ones until those are consumed.

    keyring = Keyring.from_config(EncryptionConfig(key_file="/etc/metricgate/wal.key"))
    sealer = keyring.sealer()                  # for a new segment; write sealer.header first
    stored = sealer.seal(record, associated)   # bytes to write
    opener = keyring.opener(header)            # for a segment being read
    record = opener.open(stored, associated)   # or RecordIntegrityError

Nonces are a sealer's random 64-bit prefix followed by its 32-bit record counter (a new random
prefix every 2^32 records), NIST SP 800-38D's deterministic construction with a random fixed
field: within one sealer nonces never repeat, and two sealers share a prefix with a chance of
about n^2 / 2^65 for n sealers of one key, so a queue may seal any number of records under one
key (fully random 96-bit nonces would be limited to 2^32 records, days for a busy queue).

Invariant: `open` returns a record only if it was sealed by `seal` with the same key, header and
associated bytes; anything else (tampered, truncated, other key, moved) raises
`RecordIntegrityError` (`UnknownKeyError` when no configured key has the header's id). Key
material never appears in an error, a log or `repr`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import struct
from collections.abc import Iterable
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from metricgate.config.encryption import EncryptionConfig as EncryptionConfig
from metricgate.errors import ConfigError, RecordIntegrityError, UnknownKeyError

MAGIC = b"MGE1"
VERSION = 1
HEADER_SIZE = 16
NONCE_SIZE = 12
TAG_SIZE = 16
OVERHEAD = NONCE_SIZE + TAG_SIZE
"""Bytes a sealed record has beyond the record itself."""
KEY_SIZE = 32
_ID_LABEL = b"metricgate encryption key id"
_COUNTER = struct.Struct(">I")
_MAX_COUNT = 1 << 32


def key_id(key: bytes) -> bytes:
    """The 8-byte id of a key, as stored in segment headers."""
    return hmac.new(key, _ID_LABEL, hashlib.sha256).digest()[:8]


def parse_key(data: bytes) -> bytes:
    """A 256-bit key from a key file's content: 32 raw bytes, 64 hex digits or base64."""
    if len(data) == KEY_SIZE:
        return data
    text = data.strip()
    if re.fullmatch(rb"[0-9a-fA-F]{64}", text):
        return bytes.fromhex(text.decode())
    try:
        decoded = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        decoded = b""
    if len(decoded) == KEY_SIZE:
        return decoded
    raise ValueError(
        "expected a 256-bit key: 32 raw bytes, 64 hex digits or base64 of 32 bytes "
        "(make one with `head -c 32 /dev/urandom | base64`)"
    )


def write_key_file(path: str) -> bytes:
    """Create a new random key file (base64, mode 0600); refuses to overwrite one."""
    key = os.urandom(KEY_SIZE)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(base64.b64encode(key) + b"\n")
    return key


class RecordCodec(Protocol):
    """What a WAL writer needs: seal a record for a segment."""

    header: bytes

    def seal(self, record: bytes, associated: bytes = b"") -> bytes: ...


class SegmentSealer:
    """Seals records with the current key; `header` starts each segment it seals."""

    __slots__ = ("_aead", "_count", "_prefix", "header")

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)
        self.header = MAGIC + bytes([VERSION, 0, 0, 0]) + key_id(key)
        self._prefix = os.urandom(NONCE_SIZE - 4)
        self._count = 0

    def seal(self, record: bytes, associated: bytes = b"") -> bytes:
        count = self._count
        if count >= _MAX_COUNT:  # never reuse a nonce: a new random prefix
            self._prefix, count = os.urandom(NONCE_SIZE - 4), 0
        self._count = count + 1
        nonce = self._prefix + _COUNTER.pack(count)
        return nonce + self._aead.encrypt(nonce, record, self.header + associated)

    def __repr__(self) -> str:
        return f"SegmentSealer(key id {self.header[8:].hex()})"


class SegmentOpener:
    """Opens the records of one segment (its key chosen by the header)."""

    __slots__ = ("_aead", "header")

    def __init__(self, key: bytes, header: bytes) -> None:
        self._aead = AESGCM(key)
        self.header = header

    def open(self, data: bytes, associated: bytes = b"") -> bytes:
        if len(data) < OVERHEAD:
            raise RecordIntegrityError(f"encrypted record of {len(data)} bytes is truncated")
        try:
            return self._aead.decrypt(
                data[:NONCE_SIZE], data[NONCE_SIZE:], self.header + associated
            )
        except InvalidTag:
            raise RecordIntegrityError(
                "encrypted record failed authentication (altered, truncated, or sealed for "
                "another place or key)"
            ) from None


class Keyring:
    """The current key and the previous ones, by id."""

    def __init__(self, current: bytes, previous: Iterable[bytes] = ()) -> None:
        for key in (current, *previous):
            if len(key) != KEY_SIZE:
                raise ValueError(f"expected a {KEY_SIZE}-byte key")
        self._current = current
        self.current_id = key_id(current)
        self._keys = {key_id(key): key for key in (*previous, current)}

    @classmethod
    def from_config(cls, config: EncryptionConfig, key_path: str = "encryption") -> Keyring:
        """Read the key files; ConfigError naming the key path and file when one is unusable."""
        keys: list[bytes] = []
        named = [("key_file", config.key_file)] + [
            (f"previous_key_files[{index}]", path)
            for index, path in enumerate(config.previous_key_files)
        ]
        for name, path in named:
            where = f"{key_path}.{name}" if key_path else name
            try:
                with open(path, "rb") as handle:
                    keys.append(parse_key(handle.read()))
            except OSError as exc:
                raise ConfigError(f"{where}: cannot read {path}: {exc.strerror or exc}") from None
            except ValueError as exc:
                raise ConfigError(f"{where}: {path}: {exc}") from None
        return cls(keys[0], keys[1:])

    def sealer(self) -> SegmentSealer:
        return SegmentSealer(self._current)

    def opener(self, header: bytes) -> SegmentOpener:
        if len(header) != HEADER_SIZE or header[:4] != MAGIC:
            raise RecordIntegrityError("not an encrypted segment header")
        if header[4] != VERSION:
            raise RecordIntegrityError(f"encrypted segment format version {header[4]} is unknown")
        key = self._keys.get(header[8:])
        if key is None:
            raise UnknownKeyError(
                f"segment was sealed with key id {header[8:].hex()}, which no configured key "
                "file has (add the old key to previous_key_files)"
            )
        return SegmentOpener(key, header)

    def __repr__(self) -> str:
        return f"Keyring(current {self.current_id.hex()}, {len(self._keys)} keys)"
