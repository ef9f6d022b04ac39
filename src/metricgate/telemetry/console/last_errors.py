"""The last warning or error each component logged, for the console's pipeline graph.

`LastErrors` is a logging handler on the `metricgate` logger. Components already log their
failures with the component id as an `extra` field (`exporter`, `receiver`, `processor` or
`component`), so no component reports anything to the console itself: the handler keeps, per
kind and id (a receiver and an exporter are both often called `otlp`), the newest record at
WARNING or above (time, level, message with its `error`/`reason` details, redacted) and how many
such records that component logged.

Invariant: bounded. Only ids of the running gateway are kept once the gateway is known (`watch`),
and at most `limit` ids before that; a record never raises out of the handler.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from metricgate.config.redact import redact_text

COMPONENT_KEYS = ("exporter", "receiver", "processor", "component")
"""The `extra` fields that name the component a log record is about, in order of precedence."""

_DETAIL_KEYS = ("error", "reason", "status", "code")
_MAX_MESSAGE = 2000


@dataclass
class LastError:
    """The newest warning or error of one component, and how many it logged so far."""

    time: float
    """Unix seconds."""
    level: str
    message: str
    count: int


class LastErrors(logging.Handler):
    """Keeps the newest WARNING+ record per component id (see the module docstring)."""

    def __init__(self, limit: int = 256) -> None:
        super().__init__(logging.WARNING)
        self.limit = limit
        self._known: frozenset[str] | None = None
        self._entries: dict[tuple[str, str], LastError] = {}

    def watch(self, component_ids: Iterable[str]) -> None:
        """Keep records of these ids only (the components of the running gateway)."""
        self.acquire()  # emit() runs under this lock, from any thread that logs
        try:
            known = self._known = frozenset(component_ids)
            for stale in [key for key in self._entries if key[1] not in known]:
                del self._entries[stale]
        finally:
            self.release()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            component = _component_of(record)
            if component is None or (self._known is not None and component[1] not in self._known):
                return
            previous = self._entries.get(component)
            if previous is None and len(self._entries) >= self.limit:
                return
            self._entries[component] = LastError(
                time=record.created,
                level=record.levelname.lower(),
                message=_message(record),
                count=(previous.count if previous else 0) + 1,
            )
        except Exception:  # a console must never break logging
            self.handleError(record)

    def snapshot(self) -> dict[tuple[str, str], dict[str, Any]]:
        """(kind, id) -> that component's last error as JSON-ready fields. The kind is the
        `extra` key that named it: `exporter`, `receiver`, `processor` or `component`."""
        self.acquire()
        try:
            return {key: asdict(entry) for key, entry in self._entries.items()}
        finally:
            self.release()


def _component_of(record: logging.LogRecord) -> tuple[str, str] | None:
    for key in COMPONENT_KEYS:
        value = record.__dict__.get(key)
        if isinstance(value, str) and value:
            return key, value
    return None


def _message(record: logging.LogRecord) -> str:
    text = record.getMessage()
    details = [f"{key}={record.__dict__[key]}" for key in _DETAIL_KEYS if record.__dict__.get(key)]
    if details:
        text = f"{text} ({', '.join(details)})"
    if record.exc_info and record.exc_info[1] is not None:
        text = f"{text}: {record.exc_info[1]!r}"
    return redact_text(text[:_MAX_MESSAGE])
