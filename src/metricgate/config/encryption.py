"""The `encryption` settings shared by persistent sending queues and state snapshots.

Only the settings live here (config is below the pipeline); the keys are read and used by
`metricgate.pipeline.encryption`.
"""

from __future__ import annotations

from metricgate.config.types import ComponentConfig


class EncryptionConfig(ComponentConfig):
    """`encryption` of a persistent queue or WAL, and `service.state_encryption`."""

    key_file: str
    """The current key (32 bytes: raw, 64 hex digits or base64); seals new segments."""
    previous_key_files: list[str] = []
    """Keys rotated out: they still open segments written before the rotation."""
