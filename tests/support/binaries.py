"""Locate the real third-party binaries the integration tests drive.

`scripts/test` unpacks Debian's `prometheus` and `victoria-metrics` packages into
`.cache/debs/root` and exports METRICGATE_BIN_DIR; a binary on PATH is the fallback.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

_REPO = Path(__file__).resolve().parents[2]
_DEFAULT_DIR = _REPO / ".cache" / "debs" / "root" / "usr" / "bin"


def find_binary(name: str) -> str | None:
    """Return the path to `name` (prometheus, promtool, vmagent, victoria-metrics) or None."""
    for directory in (os.environ.get("METRICGATE_BIN_DIR"), str(_DEFAULT_DIR)):
        if directory:
            candidate = Path(directory) / name
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return str(candidate)
    return shutil.which(name)


def require_binary(name: str) -> str:
    """Return the path to `name`; fail the test (in CI) or skip it (locally) when it is missing."""
    path = find_binary(name)
    if path is None:
        message = f"{name} not found: run ./scripts/test, which unpacks it into .cache/debs"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path
