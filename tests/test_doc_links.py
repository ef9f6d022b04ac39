"""Every relative link in README.md and docs/ reaches a file, and every anchor a heading in it."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote

from tests.support.markdown import ROOT, anchors, doc_files, links


def broken_links(document: Path) -> list[str]:
    """The links of `document` that lead nowhere, each with why."""
    broken = []
    for target in links(document.read_text()):
        if "://" in target or target.startswith("mailto:"):
            continue
        path, _, anchor = target.partition("#")
        linked = (document.parent / unquote(path)).resolve() if path else document
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and (linked.suffix != ".md" or anchor not in anchors(linked.read_text())):
            broken.append(f"{target}: no heading with this anchor in {linked.name}")
    return broken


def test_every_relative_link_and_anchor_resolves() -> None:
    problems = [
        f"{document.relative_to(ROOT)}: {problem}"
        for document in doc_files()
        for problem in broken_links(document)
    ]
    assert problems == []


def test_the_check_finds_a_missing_file_and_a_missing_anchor(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Other\n\n## `service.memory_limiter`\n\n## Other\n")
    document = tmp_path / "doc.md"
    document.write_text(
        "# Title\n\n[ok](other.md#servicememory_limiter) [ok](other.md#other-1) [ok](#title)\n"
        "[web](https://x.example) [gone](missing.md) [bad](other.md#nowhere) [bad](#nowhere)\n"
        "`[code](nowhere.md)`\n```yaml\n# not a heading\n[block](nowhere.md)\n```\n"
    )
    assert broken_links(document) == [
        "missing.md: no such file",
        "other.md#nowhere: no heading with this anchor in other.md",
        "#nowhere: no heading with this anchor in doc.md",
    ]
