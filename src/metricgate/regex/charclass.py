"""Character classes the way Go's `regexp/syntax` builds them: explicit code-point ranges.

Go resolves every class when it parses a pattern: `\\d`, `\\w`, `\\s` and the POSIX `[:name:]`
classes are ASCII-only, `(?i)` adds each code point's simple case-folding orbit (so `(?i)k` also
matches the Kelvin sign), and a negated class is negated after folding. Python's `re` would give
Unicode-aware `\\d`/`\\w`/`\\s` and its own case-insensitivity rules, and RE2's C++ Unicode
tables may be of another Unicode version than Go's, so the regex translator builds the ranges here
and hands the engine nothing but explicit ranges.

Invariant: every `Ranges` value leaving this module is normalized: sorted, non-overlapping and
non-adjacent `(lo, hi)` pairs of code points, inclusive.
"""

from __future__ import annotations

import bisect
import unicodedata
from functools import cache

MAX_RUNE = 0x10FFFF

Ranges = list[tuple[int, int]]

PERL_CLASSES: dict[str, Ranges] = {
    "d": [(0x30, 0x39)],
    "s": [(0x09, 0x0A), (0x0C, 0x0D), (0x20, 0x20)],
    "w": [(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)],
}
"""`\\d`, `\\s`, `\\w` (RE2: ASCII only; `\\s` has no `\\v`). Upper case letters negate."""

POSIX_CLASSES: dict[str, Ranges] = {
    "alnum": [(0x30, 0x39), (0x41, 0x5A), (0x61, 0x7A)],
    "alpha": [(0x41, 0x5A), (0x61, 0x7A)],
    "ascii": [(0x00, 0x7F)],
    "blank": [(0x09, 0x09), (0x20, 0x20)],
    "cntrl": [(0x00, 0x1F), (0x7F, 0x7F)],
    "digit": [(0x30, 0x39)],
    "graph": [(0x21, 0x7E)],
    "lower": [(0x61, 0x7A)],
    "print": [(0x20, 0x7E)],
    "punct": [(0x21, 0x2F), (0x3A, 0x40), (0x5B, 0x60), (0x7B, 0x7E)],
    "space": [(0x09, 0x0D), (0x20, 0x20)],
    "upper": [(0x41, 0x5A)],
    "word": [(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)],
    "xdigit": [(0x30, 0x39), (0x41, 0x46), (0x61, 0x66)],
}
"""`[:name:]` inside a bracket expression; `[:^name:]` negates."""


def normalize(ranges: Ranges) -> Ranges:
    """Sort and merge overlapping or adjacent ranges."""
    out: Ranges = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            if hi > out[-1][1]:
                out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return out


def negate(ranges: Ranges) -> Ranges:
    """The complement of normalized `ranges` within [0, MAX_RUNE]."""
    out: Ranges = []
    next_lo = 0
    for lo, hi in ranges:
        if next_lo <= lo - 1:
            out.append((next_lo, lo - 1))
        next_lo = hi + 1
    if next_lo <= MAX_RUNE:
        out.append((next_lo, MAX_RUNE))
    return out


@cache
def _fold_orbits() -> tuple[list[int], dict[int, tuple[int, ...]]]:
    """Code points with case variants, each mapped to its whole orbit (built once, lazily).

    Two code points are in one orbit when one is the single-character upper or lower case of the
    other; this reproduces Go's `unicode.SimpleFold` orbits (k, K, KELVIN SIGN; s, S, LONG S; ...).
    """
    neighbours: dict[int, set[int]] = {}
    for cp in range(0x41, 0x1E944):
        char = chr(cp)
        for other in (char.lower(), char.upper()):
            if len(other) == 1 and other != char:
                neighbours.setdefault(cp, set()).add(ord(other))
                neighbours.setdefault(ord(other), set()).add(cp)
    orbits: dict[int, tuple[int, ...]] = {}
    for cp in neighbours:
        if cp in orbits:
            continue
        seen, stack = {cp}, [cp]
        while stack:
            for other_cp in neighbours[stack.pop()]:
                if other_cp not in seen:
                    seen.add(other_cp)
                    stack.append(other_cp)
        orbit = tuple(sorted(seen))
        for member in orbit:
            orbits[member] = orbit
    return sorted(orbits), orbits


def fold_orbit(cp: int) -> tuple[int, ...]:
    """`cp` and every code point it matches case-insensitively (just `(cp,)` if none)."""
    return _fold_orbits()[1].get(cp, (cp,))


def fold(ranges: Ranges) -> Ranges:
    """`ranges` plus the case-folding orbit of every code point in them."""
    keys, orbits = _fold_orbits()
    out = list(ranges)
    for lo, hi in ranges:
        start = bisect.bisect_left(keys, lo)
        stop = bisect.bisect_right(keys, hi)
        for cp in keys[start:stop]:
            out.extend((member, member) for member in orbits[cp])
    return normalize(out)


_SUBCATEGORIES = {"C": "cfos", "L": "lmotu", "M": "cen", "N": "dlo", "P": "cdefios", "S": "ckmo"}
_SUBCATEGORIES["Z"] = "lps"
"""Go's general categories; `C` has no `Cn`, since Go lists no unassigned code points."""


@cache
def _categories() -> dict[str, Ranges]:
    """Unicode general categories as ranges (one scan of all code points, done lazily)."""
    found: dict[str, Ranges] = {}
    start, current = 0, unicodedata.category(chr(0))
    for cp in range(1, MAX_RUNE + 2):
        category = unicodedata.category(chr(cp)) if cp <= MAX_RUNE else ""
        if category != current:
            found.setdefault(current, []).append((start, cp - 1))
            start, current = cp, category
    tables: dict[str, Ranges] = {}
    for major, minors in _SUBCATEGORIES.items():
        for minor in minors:
            tables[major + minor] = found.get(major + minor, [])
        tables[major] = normalize([r for minor in minors for r in tables[major + minor]])
    return tables


def unicode_class(name: str) -> Ranges | None:
    """`\\p{name}`: `Any` or a general category (`L`, `Lu`, `Nd`, ...); None when unknown."""
    if name == "Any":
        return [(0, MAX_RUNE)]
    return _categories().get(name) if name[:1] in _SUBCATEGORIES else None


def _escape(cp: int) -> str:
    if cp < 0x80 and chr(cp).isalnum():
        return chr(cp)
    if cp < 0x100:
        return f"\\x{cp:02x}"
    return f"\\x{{{cp:x}}}"


def literal(cp: int) -> str:
    """One code point as an RE2 pattern atom that means exactly that character."""
    return _escape(cp)


def to_re2(ranges: Ranges) -> str:
    """An RE2 pattern atom matching exactly the code points in normalized `ranges`."""
    if not ranges:
        return f"[^\\x00-{_escape(MAX_RUNE)}]"
    if len(ranges) == 1 and ranges[0][0] == ranges[0][1]:
        return _escape(ranges[0][0])
    parts = [_escape(lo) if lo == hi else f"{_escape(lo)}-{_escape(hi)}" for lo, hi in ranges]
    return f"[{''.join(parts)}]"
