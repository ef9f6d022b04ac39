"""Every key of every component's config model is documented in that component's doc.

A component's reference is `docs/components/<kind>s/<type>.md`. Keys a model inherits from a
settings model several components share (every exporter's `sending_queue`, every listener's
timeouts and `tls`, every authenticator's cache) may instead be documented once, in that shared
model's doc, relative to it. A key is documented when a key table (first column headed `key`)
names it or one of its descendants, or when the row of an ancestor or (below the top level) a
sibling names it: `resolver.dns` | `{hostname, port: 4317}` documents `resolver.dns.port`. Keys are
walked three levels deep (`sending_queue.storage.fsync`); items of lists and values of maps count
as the level they sit in (`relabel_configs.action`).
"""

from __future__ import annotations

import re
import typing
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from metricgate.components import BUILTIN_FACTORIES
from metricgate.config.auth import AuthSettings
from metricgate.config.listeners import (
    GrpcListenerSettings,
    HttpListenerSettings,
    HttpReceiverSettings,
    ListenerSecurity,
)
from metricgate.config.memory_limiter import MemoryLimiterSettings
from metricgate.config.tls_server import ServerTls
from metricgate.config.types import ComponentConfig
from metricgate.extensions.authenticator import AuthenticatorConfig
from metricgate.extensions.registry import BUILTIN_EXTENSIONS
from metricgate.pipeline.queue import ExporterConfig
from metricgate.processing.matching import MatchProperties
from metricgate.translate.options import TranslationOptions
from tests.support.markdown import ROOT, KeyRow, key_rows

DEPTH = 3

Place = tuple[str, tuple[str, ...]]
"""A doc and the key's path as that doc writes it."""

SHARED_DOCS: dict[type[BaseModel], Place] = {
    ExporterConfig: ("docs/sending.md", ()),
    HttpReceiverSettings: ("docs/listeners.md", ()),
    HttpListenerSettings: ("docs/listeners.md", ()),
    GrpcListenerSettings: ("docs/listeners.md", ()),
    ListenerSecurity: ("docs/security.md", ()),
    ServerTls: ("docs/security.md", ()),
    AuthSettings: ("docs/security.md", ()),
    AuthenticatorConfig: ("docs/security.md", ()),
    MemoryLimiterSettings: ("docs/service.md", ()),
    MatchProperties: ("docs/components/processors/filter.md", ("include",)),
    TranslationOptions: ("docs/components/exporters/prometheus.md", ()),
}
"""Settings models several components share, the doc describing their keys once, and the path
that doc writes them under."""

DOCUMENTED_WITH = {"processors/resource": "processors/attributes"}
"""Component types documented in another type's doc."""


def components() -> list[tuple[str, type[BaseModel]]]:
    """`<kind>s/<type>` and config model of every built-in component and extension."""
    found: list[tuple[str, type[BaseModel]]] = [
        (f"{f.kind.section}/{f.type}", f.config_model) for f in BUILTIN_FACTORIES
    ]
    return found + [(f"extensions/{f.type}", f.config_model) for f in BUILTIN_EXTENSIONS]


def doc_of(component: str) -> str:
    return f"docs/components/{DOCUMENTED_WITH.get(component, component)}.md"


def config_keys(
    model: type[BaseModel], places: list[Place], depth: int = DEPTH
) -> Iterator[tuple[tuple[str, ...], list[Place]]]:
    """Every key of `model` (to `depth` levels) with the places where it may be documented."""
    for name, field in model.model_fields.items():
        key = field.alias or name
        here = [(doc, (*path, key)) for doc, path in places]
        shared = [c for c in model.__mro__ if c in SHARED_DOCS and name in c.model_fields]
        if shared:
            doc, prefix = SHARED_DOCS[shared[0]]
            here.append((doc, (*prefix, key)))
        yield here[0][1], here
        if depth > 1:
            for sub in _models_in(field.annotation):
                below = here + ([SHARED_DOCS[sub]] if sub in SHARED_DOCS else [])
                yield from config_keys(sub, below, depth - 1)


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in typing.get_args(annotation) for model in _models_in(arg)]


@cache
def rows_of(root: Path, doc: str) -> list[KeyRow]:
    path = root / doc
    return key_rows(path.read_text()) if path.exists() else []


def documented(path: tuple[str, ...], rows: list[KeyRow]) -> bool:
    for row in rows:
        for key in row.keys:
            if len(key) >= len(path) and _matches(key[: len(path)], path):
                return True  # the key itself, or a key below it
            ancestor = len(key) < len(path) and _matches(key, path[: len(key)])
            sibling = len(key) == len(path) > 1 and _matches(key[:-1], path[:-1])
            if (ancestor or sibling) and _mentions(row, path[-1]):
                return True  # the row of an ancestor or a sibling names it
    return False


def _mentions(row: KeyRow, name: str) -> bool:
    """Whether a code span of the row names `name` (`multiplier`, `{hostname, port}`)."""
    word = re.compile(rf"(?<![\w.]){re.escape(name)}(?!\w)")
    return any(word.search(span) for span in re.findall(r"`([^`]*)`", row.text))


def _matches(pattern: tuple[str, ...], path: tuple[str, ...]) -> bool:
    if len(pattern) != len(path):
        return False
    return all(p in ("*", k) for p, k in zip(pattern, path, strict=True))


def undocumented(component: str, model: type[BaseModel], root: Path = ROOT) -> list[str]:
    """The keys of `model` that none of their docs describes, with where they were looked for."""
    missing = []
    for path, places in config_keys(model, [(doc_of(component), ())]):
        if not any(documented(key, rows_of(root, doc)) for doc, key in places if key):
            docs = ", ".join(dict.fromkeys(doc for doc, _ in places))
            missing.append(f"{component}: {'.'.join(path)} (in {docs})")
    return missing


def test_every_component_has_a_doc_the_readme_links_to() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [c for c, _ in components() if not (ROOT / doc_of(c)).exists()]
    unlinked = [c for c, _ in components() if f"(docs/components/{c}.md)" not in readme]
    assert (missing, unlinked) == ([], [])


def test_every_config_key_of_every_component_is_documented() -> None:
    assert [key for c, model in components() for key in undocumented(c, model)] == []


def test_an_undocumented_key_is_found(tmp_path: Path) -> None:
    class Inner(ComponentConfig):
        depth: int = 1
        width: int = 2

    class Config(ComponentConfig):
        endpoint: str = ""
        inner: Inner = Field(default=Inner())
        if_: str = Field(default="", alias="if")

    doc = tmp_path / "docs" / "components" / "exporters" / "new.md"
    doc.parent.mkdir(parents=True)
    doc.write_text(
        "| key | default | meaning |\n|---|---|---|\n"
        "| `endpoint` | | |\n| `inner` | | `{depth}` |\n"
    )
    assert undocumented("exporters/new", Config, tmp_path) == [
        "exporters/new: inner.width (in docs/components/exporters/new.md)",
        "exporters/new: if (in docs/components/exporters/new.md)",
    ]
