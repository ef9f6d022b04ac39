"""The `metricgate` command line as users run it: `python -m metricgate ARGS` in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys


def metricgate(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run `metricgate ARGS` with `env` added to the environment; never raises on the exit code."""
    return subprocess.run(
        [sys.executable, "-m", "metricgate", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, **(env or {})},
    )
