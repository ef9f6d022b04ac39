"""What components contribute to the operator console: named panels of JSON, with an action.

A panel is a title and two callables, so a component (the cardinality limiter's offenders report,
the relabel playground) registers one through `Host.add_console_panel` and the console, which sits
below the components, never imports one. `GET /api/console/<name>` answers `read(query)`,
`POST /api/console/<name>` answers `act(body)` with the request's JSON body.

Invariant: `read` and `act` return JSON-serialisable values (or awaitables of them) quickly
(they run on the event loop) and report bad input by raising `ConfigError` (answered 400 with its
problems, which name the query parameter or body key) and a part of a `--workers N` set that
cannot answer with `UnavailableError` (503); anything else they raise is a bug, answered 500 and
logged.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

PanelRead = Callable[[Mapping[str, str]], Any]
"""`read(query parameters)` -> the panel's JSON (or an awaitable of it)."""

PanelAct = Callable[[Any], Any]
"""`act(decoded JSON body)` -> the answer's JSON."""


@dataclass(frozen=True)
class ConsolePanel:
    """One component's view in the console: what it shows (`read`) and what it does (`act`)."""

    title: str
    read: PanelRead
    act: PanelAct | None = None
