"""`metricgate run --workers N`: N worker processes, each a whole gateway, kept running.

The supervisor runs no pipeline. It makes a private directory for the workers' sockets, starts
each worker as `python -m metricgate` with the same arguments and its place in the environment
(`metricgate.role`), and then only watches:

- a worker that exits while the set runs is started again, alone (the others keep serving; their
  requests that needed it get a retryable error meanwhile). One that keeps exiting is restarted
  after a delay that doubles up to `MAX_BACKOFF_S`;
- a worker that exits with an error status in the set's first `STARTUP_S` (a port taken, a
  certificate that does not load) stops the whole set with status 1: every worker would fail the
  same way (one killed by a signal is restarted, as later);
- SIGTERM/SIGINT are passed to every worker, which shut down as a single gateway does (drain,
  flush, snapshots); a worker still running `shutdown_timeout + GRACE_S` later is killed;
- SIGHUP is passed to every worker: each reloads its config.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import Final

from metricgate.role import WorkerRole

log = logging.getLogger("metricgate.workers")

STARTUP_S: Final = 10.0
MAX_BACKOFF_S: Final = 30.0
GRACE_S: Final = 10.0
POLL_S: Final = 0.1


@dataclass
class _Worker:
    index: int
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    backoff: float = 0.5
    restart_at: float | None = None


@dataclass
class Supervisor:
    """Starts, watches and stops one set of workers (see module docstring)."""

    count: int
    arguments: Sequence[str]
    """What each worker is started with after `python -m metricgate`."""
    shutdown_timeout: float
    workers: list[_Worker] = field(default_factory=list)
    _signals: list[int] = field(default_factory=list)

    def run(self) -> int:
        directory = tempfile.mkdtemp(prefix="metricgate-workers-")
        place = WorkerRole(0, self.count, directory)
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self._received)
        try:
            began = time.monotonic()
            self.workers = [_Worker(i) for i in range(self.count)]
            for worker in self.workers:
                self._start(worker, place)
            log.info("workers started", extra={"workers": self.count, "pid": os.getpid()})
            return self._watch(place, began)
        finally:
            self._stop()
            shutil.rmtree(directory, ignore_errors=True)

    def _received(self, signum: int, _: FrameType | None) -> None:
        self._signals.append(signum)

    def _start(self, worker: _Worker, place: WorkerRole) -> None:
        environment = {**os.environ, **place.environment(worker.index)}
        worker.process = subprocess.Popen(
            [sys.executable, "-m", "metricgate", *self.arguments], env=environment
        )
        worker.started = time.monotonic()
        worker.restart_at = None

    def _watch(self, place: WorkerRole, began: float) -> int:
        while True:
            while self._signals:
                signum = self._signals.pop(0)
                if signum == signal.SIGHUP:
                    log.info("reload: passing SIGHUP to every worker")
                    self._signal_all(signal.SIGHUP)
                else:
                    return 0
            now = time.monotonic()
            for worker in self.workers:
                if worker.restart_at is not None:
                    if now >= worker.restart_at:
                        log.info("restarting worker", extra={"worker": worker.index})
                        self._start(worker, place)
                    continue
                assert worker.process is not None
                status = worker.process.poll()
                if status is None:
                    continue
                if now - began < STARTUP_S and status > 0:
                    log.error(
                        "a worker could not start; stopping the set",
                        extra={"worker": worker.index, "status": status},
                    )
                    return 1
                ran = now - worker.started
                worker.backoff = 0.5 if ran > STARTUP_S else min(worker.backoff * 2, MAX_BACKOFF_S)
                worker.restart_at = now + (0.0 if ran > STARTUP_S else worker.backoff)
                log.warning(
                    "worker exited; restarting it alone",
                    extra={
                        "worker": worker.index,
                        "status": _status(status),
                        "ran_s": round(ran, 1),
                    },
                )
            time.sleep(POLL_S)

    def _signal_all(self, signum: int) -> None:
        for worker in self.workers:
            if worker.process is not None and worker.process.poll() is None:
                worker.process.send_signal(signum)

    def _stop(self) -> None:
        self._signal_all(signal.SIGTERM)
        deadline = time.monotonic() + self.shutdown_timeout + GRACE_S
        for worker in self.workers:
            if worker.process is None:
                continue
            try:
                worker.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("worker did not stop in time; killing it", extra={"worker": worker.index})
                worker.process.kill()
                worker.process.wait()


def _status(code: int) -> str:
    """An exit status as people read it: `1`, or `signal 9 (SIGKILL)`."""
    if code >= 0:
        return str(code)
    try:
        return f"signal {-code} ({signal.Signals(-code).name})"
    except ValueError:
        return f"signal {-code}"


def worker_count(text: str) -> int:
    """`--workers`: a positive number, or `auto` for every core this process may run on."""
    if text == "auto":
        return max(1, len(os.sched_getaffinity(0)))
    number = int(text)
    if number < 1:
        raise ValueError("must be at least 1")
    return number
