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

Invariant: sample and histogram bytes are copied, never decoded. 1.0 and 2.0 `Sample` and
`Histogram` share field numbers and types, so a StaleNaN keeps its exact bit pattern.
"""

from __future__ import annotations

from typing import Final

from metricgate.exporters.prometheus_remote_write.wire import varint

_LABELS: Final = 0x0A
"""1.0 `TimeSeries.labels` and 2.0 `TimeSeries.labels_refs` (field 1, length-delimited)."""
_LABELS_TAG: Final = b"\x0a"
_SAMPLE: Final = 0x12
_EXEMPLAR_V1: Final = 0x1A
_HISTOGRAM_V1: Final = 0x22
_HISTOGRAM_V2: Final = b"\x1a"
_EXEMPLAR_V2: Final = b"\x22"
_SYMBOL: Final = b"\x22"
_SERIES_V2: Final = b"\x2a"


class ConversionError(ValueError):
    """The 1.0 body is not a `WriteRequest` this module can convert."""


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        try:
            byte = data[pos]
        except IndexError:
            raise ConversionError("truncated varint") from None
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ConversionError("varint too long")


def _skip(data: bytes, pos: int, tag: int, end: int) -> int:
    """The position after the value of a field with `tag` whose value starts at `pos`."""
    wire_type = tag & 7
    if wire_type == 0:
        _, pos = _read_varint(data, pos)
    elif wire_type == 1:
        pos += 8
    elif wire_type == 2:
        length, pos = _read_varint(data, pos)
        pos += length
    elif wire_type == 5:
        pos += 4
    else:
        raise ConversionError(f"unsupported wire type {wire_type}")
    if pos > end:
        raise ConversionError("field runs past its message")
    return pos


class _Symbols:
    """One request's symbol table: label strings (as UTF-8 bytes) to their index."""

    __slots__ = ("index", "refs")

    def __init__(self) -> None:
        self.index: dict[bytes, int] = {b"": 0}
        self.refs: dict[bytes, bytes] = {}
        """A 1.0 label block to its packed `labels_refs` payload (series repeat in a request)."""

    def labels_refs(self, data: bytes, start: int, end: int) -> bytes:
        """The packed refs payload for the `Label` fields in `data[start:end]`."""
        block = data[start:end]
        found = self.refs.get(block)
        if found is not None:
            return found
        index = self.index
        out = bytearray()
        pos = start
        while pos < end:
            if data[pos] != _LABELS:
                raise ConversionError("expected a label")
            length, pos = _read_varint(data, pos + 1)
            label_end = pos + length
            if label_end > end:
                raise ConversionError("label runs past its series")
            name = value = b""
            while pos < label_end:
                tag, pos = _read_varint(data, pos)
                if tag == 0x0A or tag == 0x12:
                    size, pos = _read_varint(data, pos)
                    if pos + size > label_end:
                        raise ConversionError("label string runs past its label")
                    if tag == 0x0A:
                        name = data[pos : pos + size]
                    else:
                        value = data[pos : pos + size]
                    pos += size
                else:
                    pos = _skip(data, pos, tag, label_end)
            for text in (name, value):
                ref = index.get(text)
                if ref is None:
                    ref = index[text] = len(index)
                out += varint(ref)
        found = self.refs[block] = bytes(out)
        return found

    def encoded(self) -> bytes:
        return b"".join(_SYMBOL + varint(len(text)) + text for text in self.index)


def _series(data: bytes, start: int, end: int, symbols: _Symbols) -> bytes:
    """One 1.0 `TimeSeries` (`data[start:end]`) as the payload of a 2.0 one."""
    pos = start
    while pos < end and data[pos] == _LABELS:
        length, pos = _read_varint(data, pos + 1)
        pos += length
    if pos > end:
        raise ConversionError("label runs past its series")
    refs = symbols.labels_refs(data, start, pos)
    head = _LABELS_TAG + varint(len(refs)) + refs if refs else b""
    # The encoder's entries end in exactly one short sample: copy it as it is.
    if (
        pos + 2 <= end
        and data[pos] == _SAMPLE
        and data[pos + 1] < 0x80
        and data[pos + 1] + pos + 2 == end
    ):
        return head + data[pos:end]
    samples: list[bytes] = []
    histograms: list[bytes] = []
    exemplars: list[bytes] = []
    while pos < end:
        field_start = pos
        tag, pos = _read_varint(data, pos)
        if tag == _LABELS:
            raise ConversionError("a label after samples, exemplars or histograms")
        pos = _skip(data, pos, tag, end)
        if tag == _SAMPLE:
            samples.append(data[field_start:pos])
        elif tag == _HISTOGRAM_V1:
            histograms.append(_HISTOGRAM_V2 + data[field_start + 1 : pos])
        elif tag == _EXEMPLAR_V1:
            exemplars.append(_exemplar(data, field_start + 1, pos, symbols))
    return head + b"".join(samples) + b"".join(histograms) + b"".join(exemplars)


def _exemplar(data: bytes, pos: int, end: int, symbols: _Symbols) -> bytes:
    """A 1.0 `Exemplar` field (its length varint at `pos`) as a 2.0 `Exemplar` field."""
    _, start = _read_varint(data, pos)
    pos = start
    while pos < end and data[pos] == _LABELS:
        length, pos = _read_varint(data, pos + 1)
        pos += length
    if pos > end:
        raise ConversionError("exemplar label runs past its exemplar")
    refs = symbols.labels_refs(data, start, pos)
    rest = bytearray()
    while pos < end:
        field_start = pos
        tag, pos = _read_varint(data, pos)
        if tag == _LABELS:
            raise ConversionError("an exemplar label after its value")
        pos = _skip(data, pos, tag, end)
        rest += data[field_start:pos]
    payload = (_LABELS_TAG + varint(len(refs)) + refs if refs else b"") + rest
    return _EXEMPLAR_V2 + varint(len(payload)) + payload


def to_v2(body: bytes) -> bytes:
    """The 2.0 `Request` carrying the series of the 1.0 `WriteRequest` `body` (see module doc)."""
    symbols = _Symbols()
    series: list[bytes] = []
    pos, end = 0, len(body)
    while pos < end:
        tag, pos = _read_varint(body, pos)
        if tag != 0x0A:
            pos = _skip(body, pos, tag, end)  # metadata (field 3) and unknown fields
            continue
        length, pos = _read_varint(body, pos)
        entry_end = pos + length
        if entry_end > end:
            raise ConversionError("series runs past the request")
        payload = _series(body, pos, entry_end, symbols)
        series.append(_SERIES_V2 + varint(len(payload)) + payload)
        pos = entry_end
    return symbols.encoded() + b"".join(series)
