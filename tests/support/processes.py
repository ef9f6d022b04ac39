"""Start a real server binary for a test, wait until it answers, and always stop it."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from tests.support.poll import block_until


@contextmanager
def running_process(
    name: str, argv: list[str], log_path: Path, ready_url: str, timeout: float = 30.0
) -> Iterator[subprocess.Popen[bytes]]:
    """Run `argv` with output in `log_path` until `ready_url` answers 200; terminate at exit."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)

    def ready() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"{name} exited:\n{log_path.read_text()}")
        try:
            return requests.get(ready_url, timeout=1).status_code == 200
        except requests.ConnectionError:
            return False

    try:
        try:
            block_until(ready, timeout, f"{name} ready", 0.1)
        except AssertionError as error:
            if process.poll() is not None:
                raise
            raise AssertionError(f"{error}\n{log_path.read_text()}") from None
        yield process
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
