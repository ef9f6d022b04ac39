"""`service.telemetry.audit`: where the security audit log goes, and how it is kept small."""

from __future__ import annotations

from pydantic import Field

from metricgate.config.types import ByteSize, ComponentConfig, Duration


class AuditConfig(ComponentConfig):
    """The append-only JSON-lines audit stream, separate from the operational log."""

    output: str = ""
    """`stdout`, a file path, or "" (no audit log)."""
    max_size: ByteSize = 100 * 1024 * 1024
    """A file is rotated (`<file>.1`, `.2`, ...) when it would grow past this."""
    max_backups: int = Field(default=5, ge=0)
    aggregate_interval: Duration = 60.0
    """Repeats of one event (same kind, principal and address) within this window are counted
    and written as one summary line at its end."""
    success_interval: Duration = 3600.0
    """A principal's successful authentication is recorded once per this interval."""
