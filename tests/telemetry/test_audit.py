"""The audit log: JSON lines, aggregation of floods, thinned successes, rotation, no secrets."""

from __future__ import annotations

import io
import json
import os
import stat
from pathlib import Path
from typing import Any

from metricgate.config.audit import AuditConfig
from metricgate.extensions import AuthEvent
from metricgate.telemetry.audit import AuditLog


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def failure(
    address: str = "192.0.2.1", principal: str = "", reason: str = "invalid bearer token"
) -> AuthEvent:
    return AuthEvent("auth_failure", "bearertokenauth/ci", address, principal, reason)


def test_floods_are_aggregated_per_principal_and_address() -> None:
    stream, clock = io.StringIO(), Clock()
    audit = AuditLog(AuditConfig(aggregate_interval=60), stream=stream, clock=clock)
    for _ in range(500):
        audit.handle(failure())
    audit.handle(failure(address="198.51.100.2"))
    audit.handle(failure(principal="bob", reason="unknown user or wrong password"))
    assert [(e["event"], e["address"], e["principal"]) for e in lines(stream)] == [
        ("auth_failure", "192.0.2.1", ""),
        ("auth_failure", "198.51.100.2", ""),
        ("auth_failure", "192.0.2.1", "bob"),
    ]
    clock.now = 30
    audit.flush()
    assert len(lines(stream)) == 3  # the window is still open
    clock.now = 61
    audit.flush()
    summary = lines(stream)[-1]
    assert summary["count"] == 500 and summary["summary"] is True
    assert (summary["address"], summary["reason"]) == ("192.0.2.1", "invalid bearer token")
    assert len(lines(stream)) == 4  # single events need no summary
    audit.handle(failure())  # a new window: written at once again
    assert lines(stream)[-1].get("count") is None


def test_successes_are_thinned_per_principal() -> None:
    stream, clock = io.StringIO(), Clock()
    audit = AuditLog(AuditConfig(success_interval=3600), stream=stream, clock=clock)
    success = AuthEvent("auth_success", "basicauth", "192.0.2.1", "alice")
    for _ in range(10):
        audit.handle(success)
    clock.now = 3601
    audit.handle(success)
    assert [e["event"] for e in lines(stream)] == ["auth_success", "auth_success"]


async def test_lifecycle_config_loads_and_pending_summaries(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    audit = AuditLog(AuditConfig(output=str(path)))
    await audit.start()
    audit.config_loaded(
        "/etc/mg.yaml", "a: 1\n", {"receivers.otlp": {"x": 1}, "exporters.debug": {}}
    )
    audit.config_loaded(
        "/etc/mg.yaml", "a: 2\n", {"receivers.otlp": {"x": 2}, "exporters.prometheus": {}}
    )
    audit.handle(failure())
    audit.handle(failure())
    audit.record(
        "admin_access", principal="ops", address="10.0.0.1", path="/debug/cardinality", allowed=True
    )
    await audit.shutdown()
    await audit.shutdown()  # idempotent
    events = [json.loads(line) for line in path.read_text().splitlines()]
    assert [e["event"] for e in events] == [
        "start",
        "config_load",
        "config_load",
        "auth_failure",
        "admin_access",
        "auth_failure",
        "stop",
    ]
    assert events[1]["changed"] == ["exporters.debug", "receivers.otlp"]
    assert events[2]["changed"] == ["exporters.debug", "exporters.prometheus", "receivers.otlp"]
    assert events[5]["count"] == 2
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert all(e["ts"].endswith("Z") for e in events)


def test_rotation_by_size(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    audit = AuditLog(AuditConfig(output=str(path), max_size=2000, max_backups=2))
    for index in range(100):
        audit.record("admin_access", principal=f"user-{index}", path="/debug")
    audit.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["audit.log", "audit.log.1", "audit.log.2"]
    for name in files:
        assert (tmp_path / name).stat().st_size <= 2000
    newest = [json.loads(line) for line in path.read_text().splitlines()]
    assert newest[-1]["event"] == "stop"
    assert newest[-2]["principal"] == "user-99"


def test_no_secret_is_written() -> None:
    stream = io.StringIO()
    audit = AuditLog(AuditConfig(), stream=stream)
    audit.record(
        "admin_access", headers={"Authorization": "Bearer s3cr3t-token-value"}, password="hunter2"
    )
    audit.handle(failure(reason="request carried Authorization: Basic YWxpY2U6aHVudGVyMg=="))
    text = stream.getvalue()
    assert "s3cr3t" not in text and "hunter2" not in text and "YWxpY2U6aHVudGVyMg" not in text


def test_disabled_writes_nothing() -> None:
    audit = AuditLog(AuditConfig())
    assert not audit.enabled
    audit.handle(failure())
    audit.close()
    assert audit.lines_written == 0
