"""Structured logging: `console` (human) or `json` (one object per line) on stderr.

Under `--workers N` every line carries the worker's index (`worker`). Every formatted line goes
through `redact_text`, so a credential that reaches a log message (an
exception quoting a header, a URL with a password) is masked.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from metricgate import role
from metricgate.config.redact import redact_text

_STANDARD = set(vars(logging.makeLogRecord({})))


class JsonFormatter(logging.Formatter):
    """One JSON object per record; `extra={...}` fields become top-level keys."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return redact_text(json.dumps(entry, default=str))


class ConsoleFormatter(logging.Formatter):
    """`time level logger: message key=value ...`, readable in a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = [
            f"{key}={value}"
            for key, value in vars(record).items()
            if key not in _STANDARD
            and not key.startswith("_")
            and key not in ("message", "asctime")
        ]
        return redact_text(f"{line} {' '.join(extras)}" if extras else line)


class _WorkerField(logging.Filter):
    """Under `--workers N`: a `worker` field on every record, so the workers' lines, which share
    one output, can be told apart."""

    def __init__(self, index: int) -> None:
        super().__init__()
        self.index = index

    def filter(self, record: logging.LogRecord) -> bool:
        record.worker = self.index
        return True


def configure_logging(level: str = "info", fmt: str = "console") -> None:
    """Send every metricgate log record to stderr in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else ConsoleFormatter())
    if role.CURRENT.shared:
        handler.addFilter(_WorkerField(role.CURRENT.index))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiohttp.access", "grpc", "asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
