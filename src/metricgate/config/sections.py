"""Sections of `type[/name]` ids (`receivers:`, `processors:`, `exporters:`, `extensions:`), each
entry's body validated by the config model of its type.

`check_listed` checks a list of references to such ids (`service.extensions`, a pipeline's
`receivers`).

Invariant: every malformed id, unknown type and invalid body is reported as a problem naming its
key path; only well-formed, validated entries are handed out.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Container, Iterator, Sequence
from typing import Any, Protocol, TypeVar

from pydantic import ValidationError

from metricgate.config.errors import format_validation_error
from metricgate.config.types import ComponentConfig

__all__ = ["ID_RE", "Typed", "check_listed", "entry_ids", "typed_entries"]

ID_RE = re.compile(r"^[a-z][a-z0-9_]*(/[^/\s]+)?$")
"""`type` or `type/name`."""


class Typed(Protocol):
    """A component or extension type, as far as validating its config goes."""

    @property
    def config_model(self) -> type[ComponentConfig]: ...


_T = TypeVar("_T", bound=Typed)


def entry_ids(raw: Any, section: str, noun: str, problems: list[str]) -> Iterator[tuple[str, Any]]:
    """(id, body) of each entry of the section `raw` at key `section` whose id is well formed;
    `noun` names its ids in messages (`component`)."""
    if raw is None:
        return
    if not isinstance(raw, dict):
        problems.append(f"{section}: expected a mapping of {noun} ids, got {raw!r}")
        return
    article = "an" if noun[:1] in "aeiou" else "a"
    for entry_id, body in raw.items():
        if not isinstance(entry_id, str) or not ID_RE.match(entry_id):
            problems.append(
                f"{section}.{entry_id}: expected {article} {noun} id like 'type' or 'type/name'"
            )
            continue
        yield entry_id, body


def typed_entries(
    raw: Any,
    section: str,
    noun: str,
    find: Callable[[str], _T | None],
    known: Callable[[], list[str]],
    problems: list[str],
    *,
    type_noun: str = "",
) -> Iterator[tuple[str, _T, ComponentConfig]]:
    """(id, type, validated config) of each valid entry (see `entry_ids`); `type_noun` names the
    types in messages (`receiver`; default `noun`), `find` looks a type name up and `known` lists
    the type names there are."""
    for entry_id, body in entry_ids(raw, section, noun, problems):
        path = f"{section}.{entry_id}"
        type_name = entry_id.partition("/")[0]
        found = find(type_name)
        if found is None:
            names = ", ".join(known()) or "none"
            problems.append(
                f"{path}: unknown {type_noun or noun} type {type_name!r} (known: {names})"
            )
            continue
        try:
            config = found.config_model.model_validate(body or {})
        except ValidationError as exc:
            problems.extend(format_validation_error(exc, path, found.config_model))
            continue
        yield entry_id, found, config


def check_listed(
    ids: Sequence[str],
    path: str,
    declared: Container[str],
    noun: str,
    section: str,
    problems: list[str],
) -> set[str]:
    """Report the ids of the list at `path` that are listed twice or not defined under `section`
    (`noun` names what they reference: `extension`, `receiver`); the ids listed."""
    seen: set[str] = set()
    for index, entry_id in enumerate(ids):
        at = f"{path}[{index}]"
        if entry_id in seen:
            problems.append(f"{at}: {entry_id!r} is listed twice")
        seen.add(entry_id)
        if entry_id not in declared:
            problems.append(
                f"{at}: references {noun} {entry_id!r}, which is not defined under {section}"
            )
    return seen
