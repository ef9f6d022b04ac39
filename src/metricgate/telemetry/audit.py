"""The security audit log: append-only JSON lines, apart from the operational log.

One object per line: `ts` (UTC, RFC 3339), `event`, then the event's fields, every value passed
through `redact`. Events: `start`, `stop`, `config_load` (file hash and the components that
changed), `auth_success` (first per principal per `success_interval`), `auth_failure`,
`access_denied` and `tenant_limit` (every one, but repeats of one kind from one principal and
address within `aggregate_interval` are counted and written as one summary line with `count`
when the window closes), `admin_access`.

The output is `stdout` or a file opened in append mode (0600) and rotated by size: `<file>` ->
`<file>.1` -> ... -> `<file>.<max_backups>`, the oldest dropped. Lines are flushed as written.
Under `--workers N` each worker writes a file of its own (`audit.worker-1.log` beside
`audit.log`): workers rotating one file would rename it under each other.

Invariant: nothing secret is written (every field is redacted), and nothing is lost silently:
a suppressed repeat is always accounted for in a later summary line (at the latest at `close`).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Mapping
from typing import IO, Any, Protocol

from metricgate import role
from metricgate.config.audit import AuditConfig
from metricgate.config.redact import redact
from metricgate.periodic import Periodic

log = logging.getLogger(__name__)

_AGGREGATED = frozenset({"auth_failure", "access_denied", "tenant_limit"})
_MAX_KEYS = 10_000


class SecurityEvent(Protocol):
    """What authenticators and listener guards report (`metricgate.extensions.AuthEvent`)."""

    @property
    def kind(self) -> str: ...
    @property
    def authenticator(self) -> str: ...
    @property
    def address(self) -> str: ...
    @property
    def principal(self) -> str: ...
    @property
    def reason(self) -> str: ...
    @property
    def tenant(self) -> str: ...


class _Window:
    __slots__ = ("count", "fields", "first", "opened")

    def __init__(self, fields: dict[str, Any], opened: float, first: str) -> None:
        self.fields = fields
        self.opened = opened
        self.first = first
        self.count = 1


class AuditLog:
    """Writes audit events (see module docstring); `handle` takes authenticators' events."""

    def __init__(
        self,
        config: AuditConfig,
        stream: IO[str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.path = (
            config.output
            if config.output in ("", "stdout")
            else role.CURRENT.own_file(config.output)
        )
        """The file written: `output`, or under `--workers N` each worker's own beside it."""
        self._clock = clock
        self._wall = wall
        self._stream = stream
        self._file: IO[str] | None = None
        self._size = 0
        self._windows: dict[tuple[str, ...], _Window] = {}
        self._successes: dict[tuple[str, str], float] = {}
        self._reads: dict[tuple[str, ...], float] = {}
        self._components: dict[str, str] = {}
        self._flusher = Periodic(
            "audit log flush", max(self.config.aggregate_interval / 4, 0.05), self.flush, log
        )
        self._closed = False
        self.lines_written = 0

    @property
    def enabled(self) -> bool:
        return bool(self.config.output) or self._stream is not None

    # --- events ------------------------------------------------------------------------------

    def record(self, event: str, **fields: Any) -> None:
        """Write one event now."""
        self._write(event, fields)

    def handle(self, event: SecurityEvent) -> None:
        """An authenticator's or guard's event: successes thinned, failures aggregated."""
        fields = {
            "authenticator": event.authenticator,
            "principal": event.principal,
            "address": event.address,
        }
        if event.tenant:
            fields["tenant"] = event.tenant
        if event.kind == "auth_success":
            key = (event.authenticator, event.principal)
            now = self._clock()
            last = self._successes.get(key)
            if last is not None and now - last < self.config.success_interval:
                return
            if len(self._successes) >= _MAX_KEYS:
                self._successes.clear()
            self._successes[key] = now
            self._write("auth_success", fields)
            return
        fields["reason"] = event.reason
        if event.kind not in _AGGREGATED:
            self._write(event.kind, fields)
            return
        self._aggregate(event.kind, fields)

    def admin_access(
        self, authenticator: str, principal: str, address: str, method: str, path: str
    ) -> None:
        """A principal used an admin page or endpoint: every change (anything but GET/HEAD) is
        written; reads once per principal and path per `aggregate_interval` (the console polls
        its pages every second)."""
        fields = {
            "authenticator": authenticator,
            "principal": principal,
            "address": address,
            "method": method,
            "path": path,
        }
        if method in ("GET", "HEAD"):
            key = ("admin_access", authenticator, principal, path)
            now = self._clock()
            last = self._reads.get(key)
            if last is not None and now - last < self.config.aggregate_interval:
                return
            if len(self._reads) >= _MAX_KEYS:
                self._reads.clear()
            self._reads[key] = now
        self._write("admin_access", fields)

    def config_loaded(self, source: str, text: str, components: Mapping[str, Any]) -> None:
        """A config file was loaded: its hash, and which component ids were added, removed or
        changed since the last load (`components` maps id -> its validated config)."""
        digests = {
            component_id: hashlib.sha256(repr(config).encode()).hexdigest()
            for component_id, config in components.items()
        }
        previous = self._components
        changed = sorted(
            component_id
            for component_id in digests.keys() | previous.keys()
            if digests.get(component_id) != previous.get(component_id)
        )
        self._components = digests
        self._write(
            "config_load",
            {
                "source": source,
                "sha256": hashlib.sha256(text.encode()).hexdigest(),
                "changed": changed,
            },
        )

    # --- aggregation -------------------------------------------------------------------------

    def _aggregate(self, kind: str, fields: dict[str, Any]) -> None:
        key = (kind, fields["authenticator"], fields["principal"], fields["address"])
        window = self._windows.get(key)
        if window is not None:
            window.count += 1
            return
        if len(self._windows) >= _MAX_KEYS:
            # An address-spraying flood: fold new sources into one window per kind.
            key = (kind, fields["authenticator"], "*", "*")
            fields = {**fields, "principal": "*", "address": "*"}
            window = self._windows.get(key)
            if window is not None:
                window.count += 1
                return
        self._windows[key] = _Window(fields, self._clock(), self._timestamp())
        self._write(kind, fields)

    def flush(self, everything: bool = False) -> None:
        """Write the summaries of windows that closed (all of them when `everything`)."""
        now = self._clock()
        interval = self.config.aggregate_interval
        for key, window in list(self._windows.items()):
            if everything or now - window.opened >= interval:
                del self._windows[key]
                if window.count > 1:
                    self._write(
                        key[0],
                        {
                            **window.fields,
                            "count": window.count,
                            "first": window.first,
                            "summary": True,
                        },
                    )

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        self._open()
        self.record("start", pid=os.getpid())
        self._flusher.start()

    async def shutdown(self, reason: str = "shutdown") -> None:
        await self._flusher.stop()
        self.close(reason)

    def close(self, reason: str = "shutdown") -> None:
        """Write every pending summary and `stop`, then close the file. Idempotent."""
        if not self.enabled or self._closed:
            return
        self.flush(everything=True)
        self.record("stop", reason=reason)
        self._closed = True
        if self._file is not None:
            self._file.close()
            self._file = None

    # --- output ------------------------------------------------------------------------------

    def _timestamp(self) -> str:
        moment = datetime.datetime.fromtimestamp(self._wall(), datetime.UTC)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def _write(self, event: str, fields: Mapping[str, Any]) -> None:
        if not self.enabled:
            return
        line = json.dumps(
            {"ts": self._timestamp(), "event": event, **redact(dict(fields))},
            default=str,
            separators=(",", ":"),
        )
        stream = self._target(len(line) + 1)
        stream.write(line + "\n")
        stream.flush()
        self._size += len(line) + 1
        self.lines_written += 1

    def _target(self, size: int) -> IO[str]:
        if self._stream is not None:
            return self._stream
        if self.config.output == "stdout":
            return sys.stdout
        if self._file is None:
            self._open()
        elif self._size + size > self.config.max_size and self._size > 0:
            self._rotate()
        assert self._file is not None
        return self._file

    def _open(self) -> None:
        output = self.path
        if self._stream is not None or output in ("", "stdout") or self._file is not None:
            return
        descriptor = os.open(output, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._file = os.fdopen(descriptor, "a", encoding="utf-8")
        self._size = os.fstat(descriptor).st_size

    def _rotate(self) -> None:
        assert self._file is not None
        self._file.close()
        self._file = None
        path = self.path
        backups = self.config.max_backups
        if backups == 0:
            os.unlink(path)
        else:
            for index in range(backups - 1, 0, -1):
                if os.path.exists(f"{path}.{index}"):
                    os.replace(f"{path}.{index}", f"{path}.{index + 1}")
            os.replace(path, f"{path}.1")
        self._open()
