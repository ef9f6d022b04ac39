"""A process's real peak memory over a block of a test, from /proc (VmHWM, or sampled VmRSS)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


def status_kib(pid: int | str, field: str) -> int:
    """A `/proc/<pid>/status` field in KiB (`VmRSS:`, `VmHWM:`)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field):
                return int(line.split()[1])
    raise AssertionError(f"{field} not in /proc/{pid}/status")


@contextmanager
def peak_rss_growth(pid: int | str = "self") -> Iterator[list[int]]:
    """Yields a list that receives the process's peak RSS growth (bytes) over the block."""
    out: list[int] = []
    start = status_kib(pid, "VmRSS:")
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as clear:
            clear.write("5")  # reset VmHWM to the current RSS
        yield out
        out.append((status_kib(pid, "VmHWM:") - start) * 1024)
    except OSError:  # clear_refs not allowed: sample instead
        peak = [start]
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.002):
                peak[0] = max(peak[0], status_kib(pid, "VmRSS:"))

        sampler = threading.Thread(target=sample)
        sampler.start()
        yield out
        done.set()
        sampler.join()
        out.append((peak[0] - start) * 1024)
