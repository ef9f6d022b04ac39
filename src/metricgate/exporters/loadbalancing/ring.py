"""A consistent-hash ring with virtual nodes: which member owns a routing key.

Each member is placed at `VIRTUAL_NODES` points on a 64-bit circle (blake2b of `member#i`); a key
belongs to the first point at or after its own hash. Adding or removing one of N members moves only
about 1/N of the keys, and only to or from that member.

Invariant: placement depends only on the member addresses and the key bytes (never on Python's
salted `hash()` or on member order), so every front instance routes a key to the same member.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterable
from typing import Final

VIRTUAL_NODES: Final = 150


def key_hash(data: bytes) -> int:
    """The ring position of `data`: 64 bits of blake2b, the same in every process."""
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")


class HashRing:
    """An immutable ring over a set of member addresses (needs at least one)."""

    __slots__ = ("_owners", "_points", "members")

    def __init__(self, members: Iterable[str], virtual_nodes: int = VIRTUAL_NODES) -> None:
        self.members: Final = tuple(sorted(set(members)))
        if not self.members:
            raise ValueError("a hash ring needs at least one member")
        placed = sorted(
            (key_hash(f"{member}#{i}".encode()), member)
            for member in self.members
            for i in range(virtual_nodes)
        )
        self._points: Final = [point for point, _ in placed]
        self._owners: Final = [member for _, member in placed]

    def owner(self, position: int) -> str:
        """The member owning ring position `position` (a `key_hash` value)."""
        index = bisect.bisect_left(self._points, position)
        return self._owners[index if index < len(self._owners) else 0]

    def lookup(self, key: bytes) -> str:
        return self.owner(key_hash(key))
