"""One exposition page from several (the workers of a `--workers N` set each render their part).

The text format and OpenMetrics both require every line of a metric family to be together, under
one header. Each page is cut into family blocks where a `# HELP` / `# TYPE` / `# UNIT` line names
another family than the line before; blocks are then put together by family name:

- `merge_pages`: a family found in one page is copied as it is (the common case: each worker owns
  whole metrics), one found in several gets the first page's header and every page's samples, a
  sample whose series (name and labels) an earlier page had already given being left out
  (`target_info` of a resource whose metrics several workers own);
- `sum_pages`: the samples of one series are summed across pages (own telemetry: points received
  by all workers together), a gauge named as a time or a state by the rules of `_combine`.

Families come out sorted by name (as each worker's page already is), an OpenMetrics page's
`# EOF` once at the end.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Final

_HEADER: Final = re.compile(r"# (?:HELP|TYPE|UNIT) (\S+)")
_EOF: Final = "# EOF\n"


def _blocks(page: str) -> dict[str, str]:
    """A page's family blocks by family name (text before the first header is dropped).

    Only comment lines are looked at, found with `str.find` (sample lines, most of a page, are
    skipped at memory speed: a newline in a label value is always escaped)."""
    blocks: dict[str, str] = {}
    page = page.removesuffix(_EOF)
    name, start = "", -1
    at = 0 if page.startswith("#") else _next_comment(page, 0)
    while at >= 0:
        match = _HEADER.match(page, at)
        if match is not None and match.group(1) != name:
            if start >= 0:
                blocks[name] = blocks.get(name, "") + page[start:at]
            name, start = match.group(1), at
        at = _next_comment(page, at)
    if start >= 0:
        blocks[name] = blocks.get(name, "") + page[start:]
    return blocks


def _next_comment(page: str, after: int) -> int:
    """Where the next line starting with `#` after position `after` begins; -1 if none."""
    found = page.find("\n#", after)
    return found + 1 if found >= 0 else -1


def _split(block: str) -> tuple[list[str], list[str]]:
    """A block's header lines and sample lines."""
    lines = block.splitlines()
    cut = 0
    while cut < len(lines) and lines[cut].startswith("#"):
        cut += 1
    return lines[:cut], [line for line in lines[cut:] if line and not line.startswith("#")]


def _series(line: str) -> str:
    """A sample line's series: its name and labels (label values may hold spaces)."""
    brace = line.rfind("}")
    return line[: brace + 1] if brace >= 0 else line.split(" ", 1)[0]


def merge_pages(pages: Sequence[str], openmetrics: bool = False) -> str:
    """The pages as one (see module docstring)."""
    gathered: dict[str, list[str]] = {}
    for page in pages:
        for name, block in _blocks(page).items():
            gathered.setdefault(name, []).append(block)
    out: list[str] = []
    for name in sorted(gathered):
        blocks = gathered[name]
        if len(blocks) == 1:
            out.append(blocks[0] if blocks[0].endswith("\n") else blocks[0] + "\n")
            continue
        header, _ = _split(blocks[0])
        seen: set[str] = set()
        out.extend(line + "\n" for line in header)
        for block in blocks:
            for line in _split(block)[1]:
                series = _series(line)
                if series not in seen:
                    seen.add(series)
                    out.append(line + "\n")
    if openmetrics:
        out.append(_EOF)
    return "".join(out)


def sum_pages(pages: Sequence[str]) -> str:
    """The pages as one, each series' samples combined (see module docstring)."""
    headers: dict[str, list[str]] = {}
    values: dict[str, dict[str, list[float]]] = {}
    for page in pages:
        for name, block in _blocks(page).items():
            header, samples = _split(block)
            headers.setdefault(name, header)
            found = values.setdefault(name, {})
            for line in samples:
                series = _series(line)
                text = line[len(series) :].split()
                if text:
                    found.setdefault(series, []).append(_number(text[0]))
    out: list[str] = []
    for name in sorted(headers):
        out.extend(line + "\n" for line in headers[name])
        gauge = any(line.startswith("# TYPE") and line.endswith(" gauge") for line in headers[name])
        for series, numbers in values[name].items():
            out.append(f"{series} {_text(_combine(series, numbers, gauge))}\n")
    return "".join(out)


def _combine(series: str, numbers: list[float], gauge: bool) -> float:
    """One value for a series from every worker's: a sum, except for samples that say when
    (`*_created`, and gauges named `*_timestamp_seconds` or `*_time_seconds`: the newest) or
    whether (gauges named `*_successful` or `up`: the lowest, so one failing worker shows)."""
    name = series.split("{", 1)[0]
    if name.endswith("_created") or (
        gauge and name.endswith(("_timestamp_seconds", "_time_seconds"))
    ):
        return max(numbers)
    if gauge and (name.endswith("_successful") or name == "up"):
        return min(numbers)
    return math.fsum(numbers)


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def _text(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)  # `12.0` reads as 12 in every parser


def labelled(page: str, name: str, value: str) -> str:
    """`page` with the label `name="value"` first on every sample (a worker's own telemetry
    shown beside the others'); `value` must need no escaping."""
    pair = f'{name}="{value}"'
    out: list[str] = []
    for line in page.splitlines():
        if not line or line.startswith("#"):
            out.append(line)
            continue
        brace = line.find("{")
        space = line.find(" ")
        if 0 <= brace < space or (brace >= 0 and space < 0):
            closing = line[brace + 1 : brace + 2] == "}"
            out.append(f"{line[: brace + 1]}{pair}{'' if closing else ','}{line[brace + 1 :]}")
        else:
            out.append(f"{line[:space]}{{{pair}}}{line[space:]}")
    return "\n".join(out) + "\n"
