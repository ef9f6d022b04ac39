"""Go (RE2) regular expression syntax, checked as Go checks it and emitted for the RE2 engine.

Prometheus and vmagent compile relabel regexes with Go's `regexp` package (RE2 syntax). This
module parses that syntax itself, the way Go's `regexp/syntax` does, and emits a pattern for
Google's RE2 (the C++ engine behind `google-re2`, which matches in linear time) that means exactly
what Go means, wherever Go and RE2's C++ parser differ:

- constructs Go lacks (backreferences, lookaround, atomic groups, possessive quantifiers,
  conditionals, `\\Z`, `\\C`) are errors with Go's reason, never another engine's meaning;
- classes become explicit code-point ranges (`charclass`): ASCII `\\d \\w \\s`, POSIX
  classes, `(?i)` by Go's case-folding orbits, Unicode categories from Python's tables;
- `^`/`$` mean start/end of text unless `(?m)`; flags `(?imsU)` last until the enclosing group
  closes, as in Go; `(?U)` is applied by swapping each quantifier's greediness; repetition counts
  are limited to 1000 like Go's;
- capture groups are numbered as in Go; names may start with a digit (`(?P<1x>...)`), so groups
  are emitted unnamed and their names returned separately.

Invariant: `translate` accepts exactly the patterns Go accepts (apart from Unicode script classes
such as `\\p{Greek}`, which it refuses), and the RE2 pattern it returns matches the same strings
with the same submatches. The output uses only flag-free RE2 syntax (`(?m:^)`, `(?s:.)` aside),
so no engine option changes its meaning.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from metricgate.regex import charclass
from metricgate.regex.charclass import Ranges

_FOLD, _MULTILINE, _DOTALL, _UNGREEDY = 1, 2, 4, 8
_FLAG_BITS = {"i": _FOLD, "m": _MULTILINE, "s": _DOTALL, "U": _UNGREEDY}
_MAX_REPEAT = 1000
_NO_BACKTRACKING = "RE2 (used by Prometheus) does not support it"
_UNSUPPORTED_GROUPS = {
    "(?=": "lookahead",
    "(?!": "negative lookahead",
    "(?<=": "lookbehind",
    "(?<!": "negative lookbehind",
    "(?>": "atomic group",
    "(?#": "comment group",
    "(?(": "conditional",
    "(?|": "branch reset group",
    "(?P=": "backreference",
    "(?P>": "subroutine call",
    "(?R": "recursion",
    "(?&": "subroutine call",
}
_OCTAL = "01234567"
_OCTAL_DIGITS = frozenset(_OCTAL)
_CONTROL_ESCAPES = {"a": 7, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11}
_GROUP_NAME_RE = re.compile(r"[A-Za-z0-9_]+")
_REPEAT_RE = re.compile(r"\{(0|[1-9][0-9]*)(?:(,)(0|[1-9][0-9]*)?)?\}")


class RegexError(ValueError):
    """The pattern is not valid Go (RE2) syntax; the message says what and where."""


@dataclass(frozen=True, slots=True)
class _Piece:
    text: str
    weight: int = 1
    """Product of the counted repetitions nested inside (Go caps it at 1000)."""
    atomic: bool = True
    """False when a quantifier needs a (?:...) around `text`."""


class _Parser:
    def __init__(self, source: str) -> None:
        self.src = source
        self.pos = 0
        self.names: list[str | None] = [None]

    def error(self, message: str) -> RegexError:
        return RegexError(message)

    def parse(self) -> str:
        text, _ = self.alternation(0)
        if self.pos < len(self.src):
            raise self.error("unexpected )")
        return text

    def alternation(self, flags: int) -> tuple[str, int]:
        state = [flags]
        branches = [self.concat(state)]
        while self.src.startswith("|", self.pos):
            self.pos += 1
            branches.append(self.concat(state))
        return "|".join(text for text, _ in branches), max(weight for _, weight in branches)

    def concat(self, state: list[int]) -> tuple[str, int]:
        pieces: list[_Piece] = []
        after_repeat = False
        src = self.src
        while self.pos < len(src) and src[self.pos] not in "|)":
            char = src[self.pos]
            repeat = _REPEAT_RE.match(src, self.pos) if char == "{" else None
            if char in "*+?" or repeat is not None:
                if after_repeat:
                    raise self.error("invalid nested repetition operator")
                if not pieces:
                    raise self.error(f"missing argument to repetition operator {char!r}")
                pieces[-1] = self.quantify(pieces[-1], repeat, state[0])
                after_repeat = True
                continue
            after_repeat = False
            if src.startswith("\\Q", self.pos):
                pieces += self.quoted(state[0])
                continue
            piece = self.atom(state)
            if piece is not None:
                pieces.append(piece)
        return "".join(p.text for p in pieces), max((p.weight for p in pieces), default=1)

    def quantify(self, piece: _Piece, repeat: re.Match[str] | None, flags: int) -> _Piece:
        weight = piece.weight
        if repeat is None:
            op = self.src[self.pos]
            self.pos += 1
        else:
            low = int(repeat.group(1))
            high = low if not repeat.group(2) else int(repeat.group(3) or -1)
            if low > _MAX_REPEAT or high > _MAX_REPEAT or (high >= 0 and low > high):
                raise self.error(f"invalid repeat count {repeat.group(0)}")
            op = repeat.group(0)
            self.pos = repeat.end()
            top = high if high >= 0 else low
            if (low >= 2 or high >= 2) and top * weight > _MAX_REPEAT:
                raise self.error(f"invalid repeat count {op} (nested counts exceed 1000)")
            weight = top * weight if top else 0
        greedy = True
        if self.src.startswith("?", self.pos):
            self.pos += 1
            greedy = False
        if flags & _UNGREEDY:
            greedy = not greedy
        body = piece.text if piece.atomic else f"(?:{piece.text})"
        return _Piece(f"{body}{op}{'' if greedy else '?'}", weight, atomic=False)

    def atom(self, state: list[int]) -> _Piece | None:
        src, flags = self.src, state[0]
        char = src[self.pos]
        if char == "(":
            return self.group(state)
        if char == "[":
            return _Piece(charclass.to_re2(self.bracket(flags)))
        if char == "\\":
            return self.escape_atom(flags)
        self.pos += 1
        if char == "^":
            return _Piece("(?m:^)" if flags & _MULTILINE else "\\A", atomic=False)
        if char == "$":
            return _Piece("(?m:$)" if flags & _MULTILINE else "\\z", atomic=False)
        if char == ".":
            return _Piece("(?s:.)" if flags & _DOTALL else ".")
        return self.literal(ord(char), flags)

    def literal(self, cp: int, flags: int) -> _Piece:
        if flags & _FOLD:
            orbit = charclass.fold_orbit(cp)
            if len(orbit) > 1:
                return _Piece(charclass.to_re2([(c, c) for c in orbit]))
        return _Piece(charclass.literal(cp))

    def group(self, state: list[int]) -> _Piece | None:
        src, start = self.src, self.pos
        name: str | None = None
        flags = state[0]
        capture = True
        if src.startswith("(?", start):
            for prefix, what in _UNSUPPORTED_GROUPS.items():
                if src.startswith(prefix, start):
                    raise self.error(f"{what} {prefix}...) is not supported: {_NO_BACKTRACKING}")
            if src.startswith("(?P<", start) or src.startswith("(?<", start):
                open_len = 4 if src[start + 2] == "P" else 3
                end = src.find(">", start)
                name = src[start + open_len : end] if end >= 0 else ""
                if end < 0 or not _GROUP_NAME_RE.fullmatch(name):
                    raise self.error(f"invalid named capture {src[start : end + 1]!r}")
                self.pos = end + 1
            else:
                capture = False
                flags, scoped = self.flag_group(flags)
                if not scoped:
                    state[0] = flags
                    return None
        else:
            self.pos += 1
        if capture:
            self.names.append(name)
        inner, weight = self.alternation(flags)
        if not src.startswith(")", self.pos):
            raise self.error("missing closing )")
        self.pos += 1
        return _Piece(f"({inner})" if capture else f"(?:{inner})", weight)

    def flag_group(self, flags: int) -> tuple[int, bool]:
        """Parse `(?flags)` or `(?flags:`; return the new flags and whether a group opens."""
        src, start = self.src, self.pos
        self.pos += 2
        negate = saw_flag = False
        while self.pos < len(src):
            char = src[self.pos]
            self.pos += 1
            if char in _FLAG_BITS:
                bit = _FLAG_BITS[char]
                flags = flags & ~bit if negate else flags | bit
                saw_flag = True
            elif char == "-" and not negate:
                negate, saw_flag = True, False
            elif char in ":)" and (saw_flag or not negate):
                return flags, char == ":"
            else:
                break
        raise self.error(f"invalid or unsupported Perl syntax {src[start : self.pos]!r}")

    def escape_atom(self, flags: int) -> _Piece | None:
        src, pos = self.src, self.pos
        kind = src[pos + 1 : pos + 2]
        # RE2's \b and \B are ASCII word boundaries, as Go's are.
        if kind in ("A", "z", "b", "B"):
            self.pos += 2
            return _Piece(f"\\{kind}", atomic=False)
        if kind == "C":
            raise self.error("\\C (any byte) is not supported")
        ranges = self.class_escape(flags)
        if ranges is not None:
            return _Piece(charclass.to_re2(ranges))
        return self.literal(self.char_escape(), flags)

    def quoted(self, flags: int) -> list[_Piece]:
        """`\\Q...\\E`: literal characters, one piece each (a quantifier binds to the last)."""
        src, pos = self.src, self.pos
        end = src.find("\\E", pos + 2)
        text = src[pos + 2 :] if end < 0 else src[pos + 2 : end]
        self.pos = len(src) if end < 0 else end + 2
        return [self.literal(ord(char), flags) for char in text]

    def class_escape(self, flags: int) -> Ranges | None:
        """`\\d`-style and `\\p{..}` escapes at `pos`, folded under (?i); None if not one."""
        src, pos = self.src, self.pos
        kind = src[pos + 1 : pos + 2]
        if kind.lower() in charclass.PERL_CLASSES:
            self.pos += 2
            return _group(charclass.PERL_CLASSES[kind.lower()], kind.isupper(), flags)
        if kind not in ("p", "P"):
            return None
        negated = kind == "P"
        if src.startswith("{", pos + 2):
            end = src.find("}", pos)
            if end < 0:
                raise self.error(f"invalid character class range {src[pos:]!r}")
            name, self.pos = src[pos + 3 : end], end + 1
        else:
            name, self.pos = src[pos + 2 : pos + 3], pos + 3
        if name.startswith("^"):
            negated, name = not negated, name[1:]
        table = charclass.unicode_class(name)
        if table is None:
            raise self.error(
                f"unsupported Unicode class {src[pos : self.pos]!r} "
                "(supported: general categories such as \\pL, \\p{Lu}, and \\p{Any})"
            )
        return _group(table, negated, flags)

    def char_escape(self) -> int:
        """A single-character escape at `pos` (Go's parseEscape); returns the code point."""
        src, pos = self.src, self.pos
        if pos + 1 >= len(src):
            raise self.error("trailing backslash at end of expression")
        char = src[pos + 1]
        self.pos = pos + 2
        if ord(char) < 0x80 and not char.isalnum():
            return ord(char)
        following = src[pos + 2 : pos + 3]
        if char in "89" or (char in "1234567" and (not following or following not in _OCTAL)):
            raise self.error(f"backreference \\{char} is not supported: {_NO_BACKTRACKING}")
        if char in _OCTAL:
            digits = char
            while len(digits) < 3 and src[self.pos : self.pos + 1] in _OCTAL_DIGITS:
                digits += src[self.pos]
                self.pos += 1
            return int(digits, 8)
        if char == "x":
            braced = re.compile(r"\{([0-9A-Fa-f]+)\}|([0-9A-Fa-f]{2})").match(src, self.pos)
            if braced and int(braced.group(1) or braced.group(2), 16) <= charclass.MAX_RUNE:
                self.pos = braced.end()
                return int(braced.group(1) or braced.group(2), 16)
        elif char in _CONTROL_ESCAPES:
            return _CONTROL_ESCAPES[char]
        hint = " (RE2 spells end of text \\z)" if char == "Z" else ""
        raise self.error(f"invalid escape sequence \\{src[pos + 1 : self.pos]}{hint}")

    def bracket(self, flags: int) -> Ranges:
        """A `[...]` class at `pos` as normalized ranges (Go's parseClass)."""
        src = self.src
        self.pos += 1
        negated = src.startswith("^", self.pos)
        self.pos += negated
        collected: Ranges = []
        first = True
        while first or not src.startswith("]", self.pos):
            if self.pos >= len(src):
                raise self.error("missing closing ]")
            first = False
            if src.startswith("[:", self.pos):
                end = src.find(":]", self.pos + 2)
                if end >= 0:
                    name = src[self.pos + 2 : end]
                    table = charclass.POSIX_CLASSES.get(name.removeprefix("^"))
                    if table is None:
                        raise self.error(f"invalid character class {src[self.pos : end + 2]!r}")
                    self.pos = end + 2
                    collected += _group(table, name.startswith("^"), flags)
                    continue
            if src.startswith("\\", self.pos):
                found = self.class_escape(flags)
                if found is not None:
                    collected += found
                    continue
            range_start = self.pos
            low = high = self.class_char()
            if src.startswith("-", self.pos) and not src.startswith("-]", self.pos):
                self.pos += 1
                high = self.class_char()
                if high < low:
                    raise self.error(
                        f"invalid character class range {src[range_start : self.pos]!r}"
                    )
            collected += charclass.fold([(low, high)]) if flags & _FOLD else [(low, high)]
        self.pos += 1
        ranges = charclass.normalize(collected)
        return charclass.negate(ranges) if negated else ranges

    def class_char(self) -> int:
        if self.pos >= len(self.src):
            raise self.error("missing closing ]")
        if self.src.startswith("\\", self.pos):
            return self.char_escape()
        self.pos += 1
        return ord(self.src[self.pos - 1])


def _group(table: Ranges, negated: bool, flags: int) -> Ranges:
    """A predefined class: folded first under (?i), then negated (Go's appendGroup)."""
    ranges = charclass.fold(table) if flags & _FOLD else table
    return charclass.negate(ranges) if negated else ranges


def translate(source: str) -> tuple[str, tuple[str | None, ...]]:
    """The RE2 pattern for Go pattern `source`, and the capture group names (index 0: None).

    Raises `RegexError` when Go would refuse `source`.
    """
    parser = _Parser(source)
    text = parser.parse()
    return text, tuple(parser.names)
