"""Encryption at rest: AES-256-GCM seal/open throughput per record size, vs plain copies.

For WAL records of 256 B, 4 KiB, 64 KiB and 1 MiB: MB/s and microseconds per record for
`SegmentSealer.seal` and `SegmentOpener.open` (each with 16 bytes of associated data, as a WAL
passes its segment and sequence numbers), next to a plain `bytes` copy of the same record (the
least a writer does without encryption).

    .venv/bin/python bench/bench_encryption.py [--megabytes 64]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

from metricgate.pipeline.encryption import Keyring


def rate(fn: Callable[[], object], count: int, size: int) -> tuple[float, float]:
    start = time.perf_counter()
    for _ in range(count):
        fn()
    elapsed = time.perf_counter() - start
    return count * size / elapsed / 1e6, elapsed / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--megabytes", type=int, default=64, help="data per measurement")
    args = parser.parse_args()
    keyring = Keyring(os.urandom(32))
    sealer = keyring.sealer()
    opener = keyring.opener(sealer.header)
    associated = b"segment-00000042"
    columns = ("seal MB/s", "us/rec", "open MB/s", "us/rec", "copy MB/s")
    print(f"{'record':>8} " + " ".join(f"{c:>10}" for c in columns))
    for size in (256, 4096, 65536, 1 << 20):
        record = os.urandom(size)
        sealed = sealer.seal(record, associated)
        count = max(args.megabytes * (1 << 20) // size, 20)
        seal_mbs, seal_us = rate(lambda r=record: sealer.seal(r, associated), count, size)
        open_mbs, open_us = rate(lambda s=sealed: opener.open(s, associated), count, size)
        copy_mbs, _ = rate(lambda r=record: bytes(bytearray(r)), count, size)
        print(
            f"{size:>8} {seal_mbs:>10.0f} {seal_us:>10.2f} {open_mbs:>10.0f} {open_us:>10.2f} "
            f"{copy_mbs:>10.0f}"
        )


if __name__ == "__main__":
    main()
