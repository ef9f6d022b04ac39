"""Under `--workers N`: a 1.0 request's entries split by the worker that owns their metric,
before anything is decoded.

Prometheus spreads one series' requests over the connections of its pool, so with the pipeline's
router alone (`metricgate.workers`) every worker that receives a series would decode it, learn it
and relabel it, and then hand it to its owner. Here the receiving worker reads only each entry's
metric name, keeps its own entries and passes the others as they are to their owners, which
decode them as if they had received them: a series is learnt once in the set. (A relabel that
renames a metric is still routed again by the pipeline's router.)

An entry's owner is found from its first label field, which is `__name__` for every writer that
sorts its labels (Prometheus, vmagent, the remote-write clients): that field is remembered, so a
known metric costs a slice and a dictionary lookup per entry. An entry whose first label is
another one is read in full.

Invariant: entries keep their order within each owner's part; an entry whose name cannot be read
stays with this worker, whose decoder reports it as it would have.
"""

from __future__ import annotations

from typing import Any, Final

from metricgate import role
from metricgate.model.caches import BoundedTable
from metricgate.wire.protowire import WireError, field, read_varint, skip

NAME_FIELD: Final = b"\x0a\x08__name__\x12"
"""A `Label` that starts with name `__name__`, and the tag of its value."""
MAX_NAMES: Final = 100_000


class EntryOwners:
    """Splits entries by owner, remembering the owner of each first label field seen."""

    def __init__(self, place: role.WorkerRole) -> None:
        self.place = place
        self._owners: BoundedTable[bytes, int] = BoundedTable(MAX_NAMES)

    def split(self, entries: list[bytes]) -> dict[int, list[bytes]]:
        """Entries by owner (this worker's included), each part in the entries' order."""
        parts: dict[int, list[bytes]] = {}
        known = self._owners.entries
        for entry in entries:
            if len(entry) > 2 and entry[0] == 0x0A and entry[1] < 0x80:
                first = entry[2 : 2 + entry[1]]
                owner = known.get(first)
                if owner is None:
                    owner = self._learn(first, entry)
            else:
                owner = self._read(entry)
            parts.setdefault(owner, []).append(entry)
        return parts

    def _learn(self, first: bytes, entry: bytes) -> int:
        name = _name_in_label(first) if first.startswith(NAME_FIELD) else None
        if name is None:
            return self._read(entry)
        return self._owners.put(first, role.owner(name, self.place.count))

    def _read(self, entry: bytes) -> int:
        name = _name_of(entry)
        return self.place.index if name is None else role.owner(name, self.place.count)


def request_body(entries: list[bytes], metadata: Any = ()) -> bytes:
    """A `WriteRequest` of `entries` (and `metadata` messages)."""
    out = [field(1, entry) for entry in entries]
    out += [field(3, message.SerializeToString()) for message in metadata]
    return b"".join(out)


def _name_in_label(label: bytes) -> str | None:
    """The value of a `Label` that starts with `__name__` (None if it does not read)."""
    try:
        size, position = read_varint(label, len(NAME_FIELD))
        value = label[position : position + size]
        return value.decode() if len(value) == size else None
    except (WireError, UnicodeDecodeError):
        return None


def _name_of(entry: bytes) -> str | None:
    """The `__name__` value among an entry's labels, reading each (None if there is none)."""
    position = 0
    try:
        while position < len(entry):
            tag, position = read_varint(entry, position)
            if tag != 0x0A:
                position = skip(entry, position, tag, len(entry))
                continue
            size, position = read_varint(entry, position)
            label = entry[position : position + size]
            position += size
            if label.startswith(NAME_FIELD):
                return _name_in_label(label)
    except WireError:
        return None
    return None
