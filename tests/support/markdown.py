"""Reading the project's Markdown docs: headings and their anchors, links, and key tables.

Anchors are GitHub's: the heading lowercased, punctuation other than `-` and `_` dropped, spaces
turned into `-`, and `-1`, `-2`, ... appended to repeats. Code blocks are not prose: a `#` comment
in a YAML example is no heading and a link inside one is no link.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).parents[2]

_HEADING = re.compile(r"^#{1,6} (.+)$")
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_CODE_SPAN = re.compile(r"`[^`]*`")
_CELL_SPLIT = re.compile(r"(?<!\\)\|")
_KEY = re.compile(r"^\.?[\w*]+(?:\[\])?(?:\.[\w*]+(?:\[\])?)*$")


def doc_files() -> list[Path]:
    """README.md and every Markdown file under docs/."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks."""
    lines = []
    fenced = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's text."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every anchor the headings of a document define."""
    seen: dict[str, int] = {}
    found = set()
    for line in prose_lines(text):
        match = _HEADING.match(line)
        if match:
            base = slug(match.group(1))
            repeat = seen.get(base, 0)
            seen[base] = repeat + 1
            found.add(base if repeat == 0 else f"{base}-{repeat}")
    return found


def links(text: str) -> list[str]:
    """The targets of the document's links, in order (code spans and blocks left out)."""
    found = []
    for line in prose_lines(text):
        found += _LINK.findall(_CODE_SPAN.sub("", line.replace("\\`", "")))
    return found


@dataclass(frozen=True)
class KeyRow:
    """One row of a key table: the keys its first cell names (dotted, `[]` dropped) and the row."""

    keys: tuple[tuple[str, ...], ...]
    text: str


def key_rows(text: str) -> list[KeyRow]:
    """The rows of every table whose first column is headed `key`.

    A cell naming several keys lists them in backticks: `a.b`, `c` is `a.b` and its sibling `a.c`,
    as is `a.b`, `.c`; a key starting without a dot after the first is a sibling of the first.
    """
    rows = []
    header: list[str] | None = None
    for line in prose_lines(text):
        if not line.startswith("|"):
            header = None
            continue
        cells = [cell.strip() for cell in _CELL_SPLIT.split(line.strip().strip("|"))]
        if header is None:
            header = cells
            continue
        if set(cells[0]) <= set("-: ") or not header[0].lower().startswith("key"):
            continue
        rows.append(KeyRow(tuple(_cell_keys(cells[0])), line))
    return rows


def _cell_keys(cell: str) -> list[tuple[str, ...]]:
    keys: list[tuple[str, ...]] = []
    for span in re.findall(r"`([^`]*)`", cell):
        if not _KEY.match(span):
            continue
        path = tuple(span.replace("[]", "").lstrip(".").split("."))
        if keys and (span.startswith(".") or len(path) == 1):
            path = keys[0][:-1] + path
        keys.append(path)
    return keys
