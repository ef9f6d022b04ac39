"""Which worker of a `metricgate run --workers N` set this process is.

The supervisor (`metricgate.workers.supervisor`) starts each worker with three environment
variables; a process started without them is the only worker of a set of one, and everything
below answers as it always did. Read once, at import: a process never changes its place.

- `METRICGATE_WORKER_INDEX`: this worker's index, 0 .. N-1;
- `METRICGATE_WORKERS`: N;
- `METRICGATE_WORKER_DIR`: the private directory (mode 0700) that holds the workers' sockets.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from zlib import crc32

INDEX_VARIABLE: Final = "METRICGATE_WORKER_INDEX"
COUNT_VARIABLE: Final = "METRICGATE_WORKERS"
DIRECTORY_VARIABLE: Final = "METRICGATE_WORKER_DIR"


@dataclass(frozen=True, slots=True)
class WorkerRole:
    """This process' place in its worker set (index 0 of 1 when it runs alone)."""

    index: int = 0
    count: int = 1
    directory: str = ""

    @property
    def shared(self) -> bool:
        """True when other workers serve the same ports (listeners bind with SO_REUSEPORT)."""
        return self.count > 1

    def socket_path(self, index: int) -> str:
        """The unix socket worker `index` of this set listens on for its peers."""
        return str(Path(self.directory) / f"worker-{index}.sock")

    def own_directory(self, directory: str | Path) -> Path:
        """Where this worker keeps files under a configured `directory` that must not be shared
        between workers (persistent queues): `directory/worker-<index>`, or `directory` alone."""
        base = Path(directory)
        return base / f"worker-{self.index}" if self.shared else base

    def own_file(self, path: str) -> str:
        """The file this worker writes for a configured `path` that must not be shared (one
        it rotates): `audit.worker-<index>.log` for `audit.log`, or `path` alone."""
        if not self.shared:
            return path
        file = Path(path)
        return str(file.with_name(f"{file.stem}.worker-{self.index}{file.suffix}"))

    def state_directory(self, directory: str | Path) -> Path:
        """Where this worker keeps its state snapshots: per index and per worker count, since
        which series a worker owns depends on both (a snapshot of another layout is not read)."""
        base = Path(directory)
        return base / f"worker-{self.index}-of-{self.count}" if self.shared else base

    def environment(self, index: int) -> dict[str, str]:
        """The variables that make a child process worker `index` of this set."""
        return {
            INDEX_VARIABLE: str(index),
            COUNT_VARIABLE: str(self.count),
            DIRECTORY_VARIABLE: self.directory,
        }


def _from_environment() -> WorkerRole:
    count = os.environ.get(COUNT_VARIABLE, "")
    if not count:
        return WorkerRole()
    role = WorkerRole(
        int(os.environ.get(INDEX_VARIABLE, "0")), int(count), os.environ.get(DIRECTORY_VARIABLE, "")
    )
    if not (0 <= role.index < role.count) or (role.shared and not role.directory):
        raise RuntimeError(f"inconsistent worker environment: {role}")
    return role


CURRENT: Final = _from_environment()
"""This process' role."""


def owner(name: str, count: int) -> int:
    """The worker that owns `name` in a set of `count` workers: every series of a metric by
    that name, or a scrape target by that key.

    A stable hash (CRC-32 of the UTF-8 name): every worker, and every restart of one, agrees.
    """
    return crc32(name.encode("utf-8", "surrogatepass")) % count if count > 1 else 0
