"""Hot reload: re-read the config, validate it, and apply it to the running service by difference.

A reload is asked for by `SIGHUP`, by `POST /-/reload` on the telemetry server (the console's
button) or, with `service.watch_config: true`, by the config file changing on disk (checked every
`WATCH_INTERVAL_S`). `Reloader.reload` loads the file the way `metricgate validate` checks it
(with the same `--set` overrides as at start); an invalid config changes nothing: every problem is
logged and `metricgate_config_last_reload_successful` drops to 0. A valid one goes to
`Service.reload`; success sets the gauge to 1 and
`metricgate_config_last_reload_success_timestamp_seconds` to now (Prometheus' names).

Invariant: reloads run one at a time (the service's lock), and a failed one leaves the gauge at 0
until a reload succeeds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from metricgate.config import Config
from metricgate.config.watched_files import WatchedFiles
from metricgate.errors import ConfigError
from metricgate.pipeline.graph import Changes
from metricgate.pipeline.service import Service

log = logging.getLogger(__name__)

WATCH_INTERVAL_S: Final = 1.0
"""How often `service.watch_config` checks the config file for a change."""


@dataclass
class ReloadResult:
    """What one reload did: applied (`ok`), or why not (`problems`); `status` is the HTTP
    answer of `POST /-/reload` (400: invalid config, 500: could not be applied)."""

    ok: bool
    message: str
    problems: list[str] = field(default_factory=list)
    changes: Changes | None = None
    status: int = 200

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "status": "success" if self.ok else "error",
            "message": self.message,
        }
        if self.problems:
            body["problems"] = self.problems
        if self.changes is not None:
            body["changes"] = self.changes.as_dict()
        return body


class Reloader:
    """Reloads one service from where its config came from (see module docstring).

    `load()` reads and validates the config (raising `ConfigError`); `on_reload` callbacks run
    after each successful reload with the new config (the relabel playground, the audit log).
    """

    def __init__(
        self,
        service: Service,
        load: Callable[[], Config],
        watch_path: str | None = None,
        on_reload: Sequence[Callable[[Config], None]] = (),
    ) -> None:
        self.service = service
        self.load = load
        self.watch_path = watch_path
        self.on_reload = list(on_reload)
        self._watcher: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[ReloadResult]] = set()

    async def answer(self) -> tuple[int, dict[str, Any]]:
        """`POST /-/reload`: the HTTP status and JSON body of a reload."""
        result = await self.reload("POST /-/reload")
        return result.status, result.as_json()

    async def reload(self, trigger: str) -> ReloadResult:
        """Load, validate and apply the config; never raises for a bad config or a failed start."""
        telemetry = self.service.telemetry
        try:
            config = self.load()
        except ConfigError as exc:
            for problem in exc.problems:
                log.error("config reload: invalid configuration: %s", problem)
            log.error(
                "config reload failed: the configuration is invalid; nothing changed",
                extra={"trigger": trigger, "problems": len(exc.problems)},
            )
            telemetry.config_reload_failed()
            return ReloadResult(
                False, "invalid configuration; nothing changed", exc.problems, status=400
            )
        for warning in config.warnings:
            log.warning("config reload: %s", warning)
        try:
            changes = await self.service.reload(config)
        except (ConfigError, OSError) as exc:
            problems = exc.problems if isinstance(exc, ConfigError) else [str(exc)]
            for problem in problems:
                log.error("config reload failed: %s", problem)
            telemetry.config_reload_failed()
            return ReloadResult(False, "reload failed", problems, status=500)
        except Exception as exc:  # a component failed in a way it should not: still answer
            log.exception("config reload failed", extra={"trigger": trigger})
            telemetry.config_reload_failed()
            return ReloadResult(False, "reload failed", [repr(exc)], status=500)
        telemetry.config_reloaded(time.time())
        for callback in self.on_reload:
            callback(config)
        summary = (
            f"reloaded: {len(changes.rebuilt)} rebuilt, {len(changes.added)} added, "
            f"{len(changes.removed)} removed, {len(changes.kept)} kept"
        )
        log.info("config " + summary, extra={"trigger": trigger, **changes.as_dict()})
        self._watch(config)
        return ReloadResult(True, summary, changes=changes)

    def trigger(self, trigger: str) -> None:
        """Reload in the background (a signal handler cannot await)."""
        task = asyncio.get_running_loop().create_task(self.reload(trigger))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    # --- service.watch_config ---------------------------------------------------------------

    def start(self) -> None:
        """Start watching the config file if the running config asks for it."""
        self._watch(self.service.config)

    def _watch(self, config: Config) -> None:
        wanted = config.service.watch_config and self.watch_path is not None
        if wanted and self._watcher is None:
            assert self.watch_path is not None
            self._watcher = asyncio.get_running_loop().create_task(
                self._watch_forever(self.watch_path), name="config watcher"
            )
        elif not wanted and self._watcher is not None:
            self._watcher.cancel()
            self._watcher = None

    async def _watch_forever(self, path: str) -> None:
        files = WatchedFiles([path], WATCH_INTERVAL_S)
        with contextlib.suppress(OSError):
            files.read()
        while True:
            await asyncio.sleep(WATCH_INTERVAL_S)
            files.force_check()
            try:
                changed = files.poll()
            except OSError as exc:
                log.warning("config watch: %s", exc)
                continue
            if changed is not None:
                await self.reload("config file changed")

    async def shutdown(self) -> None:
        watcher, self._watcher = self._watcher, None
        tasks = [t for t in (watcher, *self._pending) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
