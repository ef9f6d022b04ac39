"""Remote-write 2.0 request bodies, converted from the 1.0 bodies the shards assemble.

`to_v2(body)` reads a 1.0 `WriteRequest` (uncompressed) and writes the same series as an
`io.prometheus.write.v2.Request`: every label string goes once into `symbols` (`symbols[0]` is
`""`), each `TimeSeries` becomes `labels_refs` index pairs plus its samples, then its native
histograms and exemplars, in the order they came. Converting at send time leaves the encoder (and
the persistent queue's records) protocol-neutral. 1.0's request-level `metadata` has no per-series
place to go and is left out (the encoder writes none); metadata type stays unspecified (0).

The output is byte for byte what protobuf's `SerializeToString` writes for the same message (the
tests check it), and a body this module cannot read raises `ConversionError`: the shard then sends
that request as 1.0 instead.

Speed: a series' label block (its run of 1.0 `Label` fields) is parsed once per process and kept
(`_BLOCKS`: up to 100k blocks, about 1 KB each; emptied when full); each request then only maps
each label's bytes to its symbol refs. An entry
shaped like the encoder's (labels, then one sample) is split without walking its labels: see
`_split`. Everything else goes the general way (`_series`).

Invariant: sample and histogram bytes are copied, never decoded. 1.0 and 2.0 `Sample` and
`Histogram` share field numbers and types, so a StaleNaN keeps its exact bit pattern.
"""

from __future__ import annotations

from typing import Final

from metricgate.wire.protowire import WireError, read_varint, skip, varint

_LABEL: Final = 0x0A
"""1.0 `TimeSeries.labels` and 2.0 `TimeSeries.labels_refs` (field 1, length-delimited)."""
_SAMPLE: Final = 0x12
_EXEMPLAR_V1: Final = 0x1A
_HISTOGRAM_V1: Final = 0x22
_HISTOGRAM_V2: Final = b"\x1a"
_EXEMPLAR_V2: Final = b"\x22"
_SYMBOL: Final = b"\x22"
_SERIES_V2: Final = b"\x2a"
_REFS: Final = b"\x0a"

_MAX_SAMPLE_FIELD: Final = 22
"""Bytes of the largest plain `Sample` field: tag, length, 9-byte value, 11-byte timestamp."""
_SMALL: Final = tuple(varint(i) for i in range(1 << 14))
_MAX_CACHED_BLOCKS: Final = 100_000
_BLOCKS: dict[bytes, tuple[bytes, ...]] = {}
"""A label block to its `Label` fields: only blocks that parsed as nothing but `Label` fields."""
_MAX_CACHED_PAIRS: Final = 200_000
_PAIRS: dict[bytes, tuple[bytes, bytes]] = {}
"""A `Label` field to its name and value (label pairs repeat across series and requests)."""


class ConversionError(WireError):
    """The 1.0 body is not a `WriteRequest` this module can convert."""


def _v(value: int) -> bytes:
    return _SMALL[value] if value < 16384 else varint(value)


def _label_fields(data: bytes, start: int, end: int) -> tuple[int, tuple[bytes, ...]]:
    """Where the run of `Label` fields from `start` ends, and the fields (kept in `_BLOCKS`)."""
    fields = []
    pos = start
    while pos < end and data[pos] == _LABEL:
        length = data[pos + 1]
        if length < 0x80:
            field_end = pos + 2 + length
        else:
            length, field_end = read_varint(data, pos + 1)
            field_end += length
        fields.append(data[pos:field_end])
        pos = field_end
    if pos > end:
        raise ConversionError("label runs past its message")
    block = data[start:pos]
    found = _BLOCKS.get(block)
    if found is None:
        if len(_BLOCKS) >= _MAX_CACHED_BLOCKS:
            _BLOCKS.clear()
        found = _BLOCKS[block] = tuple(fields)
    return pos, found


class _Symbols(dict[bytes, bytes]):
    """One request's symbol table; maps a `Label` field to its packed (name, value) refs."""

    def __init__(self) -> None:
        super().__init__()
        self.index: dict[bytes, int] = {b"": 0}

    def __missing__(self, field: bytes) -> bytes:
        pair = _PAIRS.get(field)
        if pair is None:
            if len(_PAIRS) >= _MAX_CACHED_PAIRS:
                _PAIRS.clear()
            pair = _PAIRS[field] = _name_value(field)
        name, value = pair
        index = self.index
        name_ref = index.setdefault(name, len(index))
        value_ref = index.setdefault(value, len(index))
        small = _SMALL
        refs = self[field] = (
            small[name_ref] + small[value_ref]
            if name_ref < 16384 and value_ref < 16384
            else varint(name_ref) + varint(value_ref)
        )
        return refs

    def refs_field(self, fields: tuple[bytes, ...]) -> bytes:
        """The `labels_refs` field for these `Label` fields (empty for none, as proto3 omits it)."""
        if not fields:
            return b""
        packed = b"".join(map(self.__getitem__, fields))
        return _REFS + _v(len(packed)) + packed

    def encoded(self) -> bytes:
        return b"".join([_SYMBOL + _v(len(text)) + text for text in self.index])


def _name_value(field: bytes) -> tuple[bytes, bytes]:
    """The name and value of a `Label` field (tag included)."""
    size = len(field)
    if 4 <= size < 130 and field[1] == size - 2 and field[2] == 0x0A:
        name_end = 4 + field[3]
        if (
            field[3] < 0x80
            and name_end + 2 <= size
            and field[name_end] == 0x12
            and field[name_end + 1] == size - name_end - 2
        ):
            return field[4:name_end], field[name_end + 2 :]
    length, pos = read_varint(field, 1)
    end = pos + length
    if end != len(field):
        raise ConversionError("label runs past its field")
    name = value = b""
    while pos < end:
        tag, pos = read_varint(field, pos)
        if tag == 0x0A or tag == 0x12:
            size, pos = read_varint(field, pos)
            if pos + size > end:
                raise ConversionError("label string runs past its label")
            if tag == 0x0A:
                name = field[pos : pos + size]
            else:
                value = field[pos : pos + size]
            pos += size
        else:
            pos = skip(field, pos, tag, end)
    return name, value


def _split(data: bytes, start: int, end: int) -> tuple[int, tuple[bytes, ...] | None]:
    """Where the one trailing sample of an encoder-shaped entry begins, and its label fields.

    A candidate cut must hold a sample field's tag and a length reaching exactly to `end`, and
    the bytes before it must be a block already in `_BLOCKS`, which holds only runs of whole
    `Label` fields. Parsing is deterministic from `start`, so such a block is the entry's label
    run and the field at the cut is the entry's only other field: no wrong split can pass.
    """
    blocks = _BLOCKS
    for cut in range(end - 2, max(start, end - _MAX_SAMPLE_FIELD) - 1, -1):
        if data[cut] == _SAMPLE and data[cut + 1] == end - cut - 2:
            fields = blocks.get(data[start:cut])
            if fields is not None:
                return cut, fields
    return start, None


def _labelled(
    data: bytes, start: int, end: int, symbols: _Symbols, what: str
) -> tuple[bytes, list[tuple[int, int, int]]]:
    """The `labels_refs` field for the `Label` run opening `data[start:end]`, and every field
    after it as (tag, start, end); a label among those is refused, naming `what` it follows."""
    pos, labels = _label_fields(data, start, end)
    fields = []
    while pos < end:
        field_start = pos
        tag, pos = read_varint(data, pos)
        if tag == _LABEL:
            raise ConversionError(f"a label after {what}")
        pos = skip(data, pos, tag, end)
        fields.append((tag, field_start, pos))
    return symbols.refs_field(labels), fields


def _series(data: bytes, start: int, end: int, symbols: _Symbols) -> bytes:
    """One 1.0 `TimeSeries` (`data[start:end]`) as the payload of a 2.0 one (the general way)."""
    head, fields = _labelled(data, start, end, symbols, "samples, exemplars or histograms")
    samples: list[bytes] = []
    histograms: list[bytes] = []
    exemplars: list[bytes] = []
    for tag, field_start, pos in fields:
        if tag == _SAMPLE:
            samples.append(data[field_start:pos])
        elif tag == _HISTOGRAM_V1:
            histograms.append(_HISTOGRAM_V2 + data[field_start + 1 : pos])
        elif tag == _EXEMPLAR_V1:
            exemplars.append(_exemplar(data, field_start + 1, pos, symbols))
    return head + b"".join(samples) + b"".join(histograms) + b"".join(exemplars)


def _exemplar(data: bytes, pos: int, end: int, symbols: _Symbols) -> bytes:
    """A 1.0 `Exemplar` field (its length varint at `pos`) as a 2.0 `Exemplar` field."""
    _, start = read_varint(data, pos)
    head, fields = _labelled(data, start, end, symbols, "an exemplar's value")
    payload = head + b"".join(data[field_start:field_end] for _, field_start, field_end in fields)
    return _EXEMPLAR_V2 + _v(len(payload)) + payload


def to_v2(body: bytes) -> bytes:
    """The 2.0 `Request` carrying the series of the 1.0 `WriteRequest` `body` (see module doc)."""
    symbols = _Symbols()
    refs_of = symbols.__getitem__
    blocks = _BLOCKS
    small = _SMALL
    out = bytearray()
    pos, end = 0, len(body)
    try:
        while pos < end:
            if body[pos] != 0x0A:
                tag, pos = read_varint(body, pos)
                pos = skip(body, pos, tag, end)  # metadata (field 3) and unknown fields
                continue
            length = body[pos + 1]
            if length < 0x80:
                start = pos + 2
            elif body[pos + 2] < 0x80:
                length = (length & 0x7F) | body[pos + 2] << 7
                start = pos + 3
            else:
                length, start = read_varint(body, pos + 1)
            pos = start + length
            if pos > end:
                raise ConversionError("series runs past the request")
            # The encoder's usual 16-byte sample first (see `_split` for why this is safe).
            cut = pos - 18
            if cut >= start and body[cut] == _SAMPLE and body[cut + 1] == 16:
                fields = blocks.get(body[start:cut])
            else:
                cut, fields = _split(body, start, pos)
            if fields is None:
                payload = _series(body, start, pos, symbols)
                out += _SERIES_V2
                out += _v(len(payload))
                out += payload
                continue
            if not fields:
                out += _SERIES_V2
                out += small[pos - cut]
                out += body[cut:pos]
                continue
            refs = b"".join(map(refs_of, fields))
            refs_size = small[len(refs)] if len(refs) < 16384 else varint(len(refs))
            size = 1 + len(refs_size) + len(refs) + pos - cut
            out += _SERIES_V2
            out += small[size] if size < 16384 else varint(size)
            out += _REFS
            out += refs_size
            out += refs
            out += body[cut:pos]
    except IndexError:
        raise ConversionError("truncated message") from None
    except ConversionError:
        raise
    except WireError as exc:
        raise ConversionError(str(exc)) from None
    return symbols.encoded() + out
