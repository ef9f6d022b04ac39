"""Real Prometheus client libraries in other languages, as installed by scripts/test.

Go: Debian's Go toolchain and client_golang sources unpacked into `.cache/go/root`; programs are
built offline in GOPATH mode and cached by source hash. Node: prom-client and
prometheus-remote-write installed into `.cache/npm`.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

_CACHE = Path(__file__).resolve().parents[2] / ".cache"
_GO_ROOT = _CACHE / "go" / "root"
_NODE_MODULES = _CACHE / "npm" / "node_modules"


def _missing(message: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def go_program(source: str, name: str) -> Path:
    """Build the Go `main` package `source` (importing client_golang) and return the binary."""
    goroot = _GO_ROOT / "usr" / "lib" / "go-1.19"
    if not (goroot / "bin" / "go").exists():
        _missing("Go not found: run ./scripts/test, which unpacks it into .cache/go")
    digest = hashlib.sha256(source.encode()).hexdigest()[:16]
    binary = _CACHE / "go" / "bin" / f"{name}-{digest}"
    if binary.exists():
        return binary
    gopath = _CACHE / "go" / "work"
    package = gopath / "src" / f"{name}-{digest}"
    package.mkdir(parents=True, exist_ok=True)
    (package / "main.go").write_text(source)
    env = {
        **os.environ,
        "GOROOT": str(goroot),
        "GOPATH": f"{_GO_ROOT / 'usr' / 'share' / 'gocode'}:{gopath}",
        "GO111MODULE": "off",
        "GOFLAGS": "",
        "GOCACHE": str(_CACHE / "go" / "build-cache"),
        "CGO_ENABLED": "0",
    }
    built = binary.with_suffix(".tmp")
    subprocess.run(
        [str(goroot / "bin" / "go"), "build", "-o", str(built), f"{name}-{digest}"],
        cwd=package,
        env=env,
        check=True,
        capture_output=True,
        timeout=600,
    )
    built.rename(binary)
    return binary


def node_env(package: str = "prom-client") -> dict[str, str]:
    """The environment for `node` scripts that `require(package)` (installed by scripts/test)."""
    if not (_NODE_MODULES / package).exists():
        _missing(f"{package} not found: run ./scripts/test, which installs it into .cache/npm")
    return {**os.environ, "NODE_PATH": str(_NODE_MODULES)}
