"""`file_sd_configs`: targets listed in JSON or YAML files, picked up when the files change.

Each entry names file patterns (`*` allowed in the last path element, Prometheus' rule) and a
`refresh_interval` (5m). The discoverer looks at the matching files every `poll_interval`
(1 s; by modification time, size and inode, no inotify) and re-reads those that appeared or
changed; every `refresh_interval` it re-reads them all anyway. A file holds a list of static
configs; its groups are sourced `<path>:<index>` and carry `__meta_filepath`. A file that cannot
be read or parsed keeps the groups it last gave (the error is logged with its name); a removed file
removes its groups. Relative patterns are relative to the working directory.

Invariant: only well-formed files change what is sent; file access runs in a worker thread, never
on the event loop.
"""

from __future__ import annotations

import asyncio
import glob
import json
import os
import re
from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import field_validator

from metricgate.config.types import ComponentConfig
from metricgate.discovery.refresh import FailureLog, GroupTable, Interval
from metricgate.discovery.static import groups_from_document
from metricgate.discovery.targets import (
    Discoverer,
    OnRefresh,
    SendGroups,
    TargetGroup,
    ignore_refresh,
)
from metricgate.errors import describe

_PATTERN = re.compile(r"^[^*]*(\*[^/]*)?\.(json|yml|yaml|JSON|YML|YAML)$")
"""Prometheus' rule: a .json/.yml/.yaml name, with `*` only in the last path element."""


class FileSDConfig(ComponentConfig):
    """One `file_sd_configs` entry: `files` (patterns) and `refresh_interval` (5m)."""

    files: list[str]
    refresh_interval: Interval = 300.0

    @field_validator("files")
    @classmethod
    def _patterns(cls, files: list[str]) -> list[str]:
        if not files:
            raise ValueError("expected at least one file name pattern")
        for name in files:
            if not _PATTERN.match(name):
                raise ValueError(
                    "expected a path ending in .json, .yml or .yaml, with `*` only in its last "
                    f"element, got {name!r}"
                )
        return files


_Stamp = tuple[int, int, int]
"""(mtime_ns, size, inode): a file with an unchanged stamp is not read again before the interval."""


@dataclass
class _File:
    stamp: _Stamp
    groups: list[TargetGroup]


def _read(path: str, source: str) -> list[TargetGroup]:
    with open(path, "rb") as handle:
        content = handle.read()
    json_file = path.lower().endswith(".json")
    document: Any = json.loads(content) if json_file else yaml.safe_load(content)
    return groups_from_document(document, source, {"__meta_filepath": path})


class FileDiscoverer(Discoverer):
    """Watches the files of one `file_sd_configs` entry by polling their stamps."""

    mechanism = "file"

    def __init__(
        self,
        config: FileSDConfig,
        name: str = "file",
        on_refresh: OnRefresh = ignore_refresh,
        poll_interval: float = 1.0,
    ) -> None:
        self.config = config
        self.name = name
        self.on_refresh = on_refresh
        self.poll_interval = poll_interval
        self.files: dict[str, _File] = {}
        self.table = GroupTable()
        self.failures = FailureLog(self.mechanism)

    def _stamps(self) -> dict[str, _Stamp]:
        stamps: dict[str, _Stamp] = {}
        for pattern in self.config.files:
            for path in sorted(glob.glob(pattern)):
                try:
                    info = os.stat(path)
                except OSError:
                    continue  # removed since the glob
                stamps[path] = (info.st_mtime_ns, info.st_size, info.st_ino)
        return stamps

    def _scan(
        self, everything: bool
    ) -> tuple[dict[str, _Stamp], dict[str, list[TargetGroup] | str]]:
        """Stamps of the matching files, and what reading the new or changed ones gave."""
        stamps = self._stamps()
        read: dict[str, list[TargetGroup] | str] = {}
        for path, stamp in stamps.items():
            known = self.files.get(path)
            if everything or known is None or known.stamp != stamp:
                try:
                    read[path] = _read(path, f"{self.name}/{path}")
                except Exception as exc:  # a user's file: any parse error is reported, not raised
                    read[path] = describe(exc)
        return stamps, read

    def _apply(
        self, stamps: dict[str, _Stamp], read: dict[str, list[TargetGroup] | str]
    ) -> tuple[list[TargetGroup], bool]:
        for path in [path for path in self.files if path not in stamps]:
            del self.files[path]
            self.failures.forget(path)
        failed = False
        for path, outcome in read.items():
            if isinstance(outcome, str):
                failed = True
                self.failures.failed(path, outcome)
                last = self.files.get(path)
                self.files[path] = _File(stamps[path], last.groups if last else [])
            else:
                self.failures.succeeded(path)
                self.files[path] = _File(stamps[path], outcome)
        current = [group for file in self.files.values() for group in file.groups]
        return self.table.replace(current), failed

    async def _refresh(self, everything: bool) -> list[TargetGroup]:
        """Look at the files (read them all with `everything`); return the changed groups."""
        stamps, read = await asyncio.to_thread(self._scan, everything)
        if not everything and not read and stamps.keys() == self.files.keys():
            return []  # nothing changed on disk: not a refresh
        changed, failed = self._apply(stamps, read)
        self.on_refresh(self.mechanism, failed)
        return changed

    async def run(self, send: SendGroups) -> None:
        loop = asyncio.get_running_loop()
        await self._refresh(everything=True)
        send(list(self.table.groups.values()))
        next_full = loop.time() + self.config.refresh_interval
        while True:
            await asyncio.sleep(min(self.poll_interval, max(0.0, next_full - loop.time())))
            everything = loop.time() >= next_full
            if everything:
                next_full = loop.time() + self.config.refresh_interval
            changed = await self._refresh(everything)
            if changed:
                send(changed)
