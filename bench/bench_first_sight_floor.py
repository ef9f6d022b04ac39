"""The least Python work a new series costs on the forwarding path, as a floor to measure against.

`bench_forward.py` times the gateway's own stages for the first sight of a series (decode ->
relabel -> encode, about 19 us). This script does only what any forwarder written in Python must
do for the same requests (`bench_vs_vmagent.py`'s 100 metrics, 8 labels, 2,000 samples per
request, the same 3 rules): split the entry's label fields, decode each distinct label once,
apply the rules' outcome remembered by the two labels they read, sort, encode the output labels
from per-label cached bytes, and keep a state per series with its CRC. There is no model object,
no translation, no duplicate or staleness tracking and no telemetry, and the 3 rules are written
out by hand: what is left is the cost of the language, not of a design.

    .venv/bin/python bench/bench_first_sight_floor.py
    .venv/bin/python bench/bench_first_sight_floor.py --series 300000

Prints CPU microseconds per new series; compare with the `cold` total of `bench_forward.py
--per-request 2000`.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import zlib
from pathlib import Path

import cramjam

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_vs_vmagent import build_round, series_labels
from metricgate.receivers.prometheus_remote_write.decode import parse_v1
from metricgate.wire.protowire import field, varint
from metricgate.wire.remotewrite.layout import VALUE_HEAD, VALUE_TAIL, label_fields

Pair = tuple[str, str]
Edit = tuple[tuple[str, ...], tuple[Pair, ...]] | None
EXTERNAL: Pair = ("forwarder", "metricgate")


class State:
    """What a forwarder keeps per series: its entry head and shard key."""

    __slots__ = ("head", "key")

    def __init__(self, head: bytes) -> None:
        self.head = head
        self.key = zlib.crc32(head)


def rules(route: str | None, status: str | None) -> Edit:
    """`bench_vs_vmagent.RULES_YAML` by hand: drop /internal/ routes, drop `pod`, add
    `code_class` from a 3-digit status."""
    if route is not None and route.startswith("/internal/"):
        return None
    added = (("code_class", status[0] + "xx"),) if status and len(status) == 3 else ()
    return ("pod",), added


def forward(requests: list[bytes]) -> float:
    """CPU seconds to forward `requests` (decompressed `WriteRequest`s) once."""
    decoded: dict[bytes, Pair] = {}
    encoded: dict[Pair, bytes] = {}
    edits: dict[tuple[str | None, str | None], Edit] = {}
    states: dict[bytes, State | None] = {}
    owners: dict[bytes, bytes] = {}
    parsed = [parse_v1(body) for body in requests]
    started = time.process_time()
    for request in parsed:
        out = bytearray()
        for entry in request.timeseries:
            if entry[-VALUE_TAIL : -VALUE_TAIL + 3] != VALUE_HEAD:
                continue  # value 0: the real decoder reads this shape too; a floor skips it
            key = entry[:-VALUE_TAIL]
            state = states.get(key, False)
            if state is False:
                state = states[key] = _new(key, decoded, encoded, edits, owners)
            if state is not None:
                out += state.head
                out += entry[-15:]
    return time.process_time() - started


def _new(
    key: bytes,
    decoded: dict[bytes, Pair],
    encoded: dict[Pair, bytes],
    edits: dict[tuple[str | None, str | None], Edit],
    owners: dict[bytes, bytes],
) -> State | None:
    _, payloads = label_fields(key)
    pairs = []
    for raw in payloads:
        pair = decoded.get(raw)
        if pair is None:
            size = raw[1]  # names and values under 128 bytes: a floor, not a parser
            pair = decoded[raw] = (raw[2 : 2 + size].decode(), raw[4 + size :].decode())
        pairs.append(pair)
    labels = dict(pairs)
    read = (labels.get("route"), labels.get("status"))
    edit = edits.get(read, False)
    if edit is False:
        edit = edits[read] = rules(*read)
    if edit is None:
        return None
    removed, added = edit
    kept = [pair for pair in pairs if pair[0] not in removed]
    kept += added
    kept.append(EXTERNAL)
    kept.sort()
    parts = []
    for pair in kept:
        found = encoded.get(pair)
        if found is None:
            name, value = pair
            found = encoded[pair] = field(1, field(1, name.encode()) + field(2, value.encode()))
        parts.append(found)
    block = b"".join(parts)
    head = b"\x0a" + varint(len(block) + VALUE_TAIL) + block + VALUE_HEAD
    owners.setdefault(head, key)
    return State(head)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=100_000)
    parser.add_argument("--per-request", type=int, default=2000)
    args = parser.parse_args()
    labels = series_labels(args.series)
    bodies = build_round(labels, args.per_request, 1_700_000_000_000, 0)
    requests = [bytes(cramjam.snappy.decompress_raw(body)) for body in bodies]
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)  # what `metricgate run` does
    spent = forward(requests)
    print(
        f"{len(labels):,} new series, {args.per_request:,} samples per request: "
        f"{spent / len(labels) * 1e6:.2f} CPU us per series (the floor of this work in Python)"
    )


if __name__ == "__main__":
    main()
