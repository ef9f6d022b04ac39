"""How much memory this process uses, how much of it is free for reuse, and giving it back.

RSS alone cannot tell a memory limiter when to stop refusing: CPython's small-object allocator
(pymalloc) gets memory from the system in 1 MiB arenas and returns an arena only once every object
in it is gone, so after a flood of short-lived series the arenas stay mapped (a few surviving
objects pin each one) and RSS stays where the flood left it, although most of it is free and is
what Python allocates from next. So the limiter measures

    usage = RSS - memory pymalloc holds free (available blocks in used pools, and unused pools)

which falls as soon as the garbage is collected, as the Go runtime's heap figure does for the
Collector. pymalloc reports those figures only as text (`_PyObject_DebugMallocStats`, what
`sys._debugmallocstats()` prints); it is read through an in-memory `FILE` (`open_memstream`), so
nothing is written to stderr, and it costs about 0.1 ms per 100 MiB of heap, paid only when RSS is
over the soft limit. Where it is unavailable (another allocator, no glibc) `allocator_free()` is 0
and the limiter falls back to RSS. Unused pools of the newest arena may never have been touched
(not resident); counting them overstates free memory by at most about an arena.

`trim_allocator()` asks glibc's malloc to return free pages (`malloc_trim(0)`), which lowers RSS
for the memory Python got from malloc (large objects, dict tables).

Invariant: every function here only reads or trims; none raises on a platform that lacks a
facility (it reports 0 or does nothing instead).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import re
from typing import Any, Final

_PAGE: Final = os.sysconf("SC_PAGE_SIZE")
_AVAILABLE_RE: Final = re.compile(rb"^# bytes in available blocks\s*=\s*([\d,]+)", re.M)
_UNUSED_POOLS_RE: Final = re.compile(rb"^(\d+) unused pools \* (\d+) bytes", re.M)


def process_rss() -> int:
    """Resident set size of this process in bytes (Linux /proc, cheap)."""
    with open("/proc/self/statm", "rb") as statm:
        return int(statm.read().split()[1]) * _PAGE


def total_memory() -> int:
    """Memory available to the process: the cgroup limit if set, else physical memory."""
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        with contextlib.suppress(OSError, ValueError):
            with open(path) as limit:
                value = int(limit.read().strip())
            if 0 < value < 1 << 60:
                return value
    return _PAGE * os.sysconf("SC_PHYS_PAGES")


class _Libc:
    """The C functions used here; each None when this platform lacks it."""

    def __init__(self) -> None:
        self.malloc_trim: Any = None
        self.open_memstream: Any = None
        self.fclose: Any = None
        self.free: Any = None
        self.pymalloc_stats: Any = None
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or None)
        except OSError:
            return
        trim = getattr(libc, "malloc_trim", None)
        if trim is not None:
            trim.argtypes = [ctypes.c_size_t]
            trim.restype = ctypes.c_int
            self.malloc_trim = trim
        stats = getattr(ctypes.pythonapi, "_PyObject_DebugMallocStats", None)
        memstream = getattr(libc, "open_memstream", None)
        if stats is None or memstream is None:
            return
        memstream.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_size_t)]
        memstream.restype = ctypes.c_void_p
        libc.fclose.argtypes = [ctypes.c_void_p]
        libc.fclose.restype = ctypes.c_int
        libc.free.argtypes = [ctypes.c_void_p]
        libc.free.restype = None
        stats.argtypes = [ctypes.c_void_p]
        stats.restype = ctypes.c_int
        self.open_memstream, self.fclose, self.free = memstream, libc.fclose, libc.free
        self.pymalloc_stats = stats


_LIBC: Final = _Libc()


def _pymalloc_report() -> bytes:
    """pymalloc's statistics as text (empty when they cannot be had)."""
    libc = _LIBC
    if libc.pymalloc_stats is None:
        return b""
    buffer = ctypes.c_void_p()
    size = ctypes.c_size_t()
    stream = libc.open_memstream(ctypes.byref(buffer), ctypes.byref(size))
    if not stream:
        return b""
    try:
        libc.pymalloc_stats(stream)
    finally:
        libc.fclose(stream)  # flushes: `buffer` and `size` are set from here on
    try:
        return ctypes.string_at(buffer.value, size.value) if buffer.value else b""
    finally:
        libc.free(buffer.value)


def allocator_free() -> int:
    """Bytes pymalloc holds free for reuse (see the module docstring); 0 when unknown."""
    report = _pymalloc_report()
    available = _AVAILABLE_RE.search(report)
    pools = _UNUSED_POOLS_RE.search(report)
    if available is None or pools is None:
        return 0
    return int(available.group(1).replace(b",", b"")) + int(pools.group(1)) * int(pools.group(2))


def trim_allocator() -> None:
    """Hand the C allocator's free pages back to the system (glibc; nothing elsewhere)."""
    if _LIBC.malloc_trim is not None:
        _LIBC.malloc_trim(0)
