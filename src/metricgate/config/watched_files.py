"""Files that are re-read when they change on disk: certificates, token lists, htpasswd, keys.

A `WatchedFiles` holds a few paths read together as one unit (a certificate with its key). `poll()`
is cheap enough for a request path: between checks it costs one clock read; a check `stat`s the
files and re-reads them only when a signature (inode, size, mtime, ctime) differs from the last
accepted one. A file that changes while it is being read (a writer not yet done) is not handed
out: the next check tries again.

Invariant: `poll()` returns new contents at most once per change, so a caller that refuses bad
contents (a half-written certificate) keeps its old material and is not asked again until the
files change once more; it never reloads in a loop or floods its log.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence

Signature = tuple[int, int, int, int] | None
"""(inode, size, mtime ns, ctime ns) of a file; None when it cannot be stat'ed."""


def signature(path: str) -> Signature:
    """What identifies one version of a file, without reading it."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class WatchedFiles:
    """A group of files read together, re-read when any of them changes (see module docstring).

    `interval` is the least time between two checks; 0 turns checking off (read once).
    """

    __slots__ = ("_clock", "_next_check", "_seen", "interval", "paths")

    def __init__(
        self,
        paths: Sequence[str],
        interval: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.paths = tuple(paths)
        self.interval = interval
        self._clock = clock
        self._seen: tuple[Signature, ...] = ()
        self._next_check = clock() + interval

    def read(self) -> tuple[bytes, ...]:
        """Read every file now and remember this version; raises OSError naming the path."""
        before = tuple(signature(path) for path in self.paths)
        contents = tuple(_read(path) for path in self.paths)
        self._seen = before
        return contents

    def peek(self) -> tuple[bytes, ...]:
        """Read every file now without remembering this version (to compare with a read)."""
        return tuple(_read(path) for path in self.paths)

    def poll(self) -> tuple[bytes, ...] | None:
        """The files' new contents when a check is due and they changed; otherwise None.

        Raises OSError (once per change) when a changed file cannot be read.
        """
        if self.interval <= 0:
            return None
        now = self._clock()
        if now < self._next_check:
            return None
        self._next_check = now + self.interval
        current = tuple(signature(path) for path in self.paths)
        if current == self._seen:
            return None
        if None in current:
            self._seen = current
            missing = self.paths[current.index(None)]
            raise OSError(f"{missing}: cannot read the file (missing or not accessible)")
        contents = tuple(_read(path) for path in self.paths)
        if tuple(signature(path) for path in self.paths) != current:
            return None  # still being written: look again at the next check
        self._seen = current
        return contents

    def force_check(self) -> None:
        """Make the next `poll()` check the files whatever the interval (tests, SIGHUP)."""
        self._next_check = self._clock()


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise OSError(f"{path}: cannot read the file: {exc.strerror or exc}") from None
