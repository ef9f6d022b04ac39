"""Go regular expressions matched in linear time, with Go's `Expand` and `ReplaceAllString`.

`GoRegex` checks a Go (RE2) pattern through `syntax.translate` and matches it with Google's RE2
engine (`google-re2`), which runs in time linear in the text whatever the pattern: a relabel rule
runs on the event loop inside a receiver's request, so a pattern such as `(a+)+b` must not be able
to stall the gateway the way a backtracking engine lets it. On top of matching it offers the
operations the relabel rules need, with Go's exact semantics: `search` is Go's leftmost-first
match, `expand` follows `Regexp.Expand` (`$1x` names the group `1x`, not group 1 then `x`; unknown
or unmatched groups expand to ""), and `replace_all` follows `ReplaceAllString` (an empty match
right after a match is not replaced, unlike Python's `re.sub`).

RE2 matches UTF-8 bytes: texts are encoded once per call (lone surrogates, which only a JSON
`\\ud800` escape can produce, pass through as the bytes Python's `surrogatepass` gives them and
match `.` as Go's invalid UTF-8 does), and offsets are converted back only for non-ASCII texts.

Invariant: a `GoRegex` built from a pattern matches what Go's `regexp.MustCompile` of the same
pattern matches, with the same submatches, in linear time. Nothing here may hand a pattern to a
backtracking engine.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import re2

from metricgate.regex.syntax import RegexError, translate

__all__ = ["Expander", "GoMatch", "GoRegex", "RegexError"]

_NO_MATCH = (-1, -1)


def _options() -> Any:
    options = re2.Options()
    # Errors become RegexError messages; RE2 must not also print them to stderr.
    options.log_errors = False
    return options


_OPTIONS: Any = _options()
_UNANCHORED: Any = re2._Anchor.UNANCHORED


def _encode(text: str) -> bytes:
    try:
        return text.encode()
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "surrogatepass")


class GoMatch:
    """One match: Go's submatches, read like a `re.Match` (`group`, `groups`, `span`)."""

    __slots__ = ("_data", "_spans", "_text")

    def __init__(self, text: str, data: bytes, spans: list[tuple[int, int]]) -> None:
        self._text = text
        self._data = data
        self._spans = spans
        """Byte offsets into `data`, per group; (-1, -1) for a group that did not participate."""

    def group(self, index: int = 0) -> str | None:
        """The text group `index` matched, or None when it did not participate."""
        start, end = self._spans[index]
        if start < 0:
            return None
        if len(self._data) == len(self._text):  # ASCII: byte offsets are character offsets
            return self._text[start:end]
        return _decode(self._data[start:end])

    def groups(self) -> tuple[str | None, ...]:
        """Every capture group's text (None where it did not participate)."""
        return tuple(self.group(index) for index in range(1, len(self._spans)))

    def span(self, index: int = 0) -> tuple[int, int]:
        """Character offsets of group `index` in the text; (-1, -1) if it did not participate."""
        start, end = self._spans[index]
        if start < 0 or len(self._data) == len(self._text):
            return start, end
        return len(_decode(self._data[:start])), len(_decode(self._data[:end]))

    def __repr__(self) -> str:
        return f"GoMatch(span={self.span()}, match={self.group()!r})"


Expander = Callable[[GoMatch], str]
"""A template compiled against one regex: match -> expanded text."""


class GoRegex:
    """A compiled Go regular expression: Go's matching, submatches, Expand and ReplaceAll.

    Matching runs on RE2, so its cost is linear in the text for every pattern; the pattern is
    checked against Go's syntax first, so what Prometheus refuses is refused here too.
    """

    __slots__ = ("_match", "group_names", "pattern", "source")

    def __init__(self, source: str, anchored: bool = True) -> None:
        self.source = source
        """The expression as the user wrote it (without the anchoring Prometheus adds)."""
        # Prometheus anchors by wrapping the text, so a pattern like `a)|(b` parses as Go parses it.
        try:
            self.pattern, self.group_names = translate(f"^(?:{source})$" if anchored else source)
        except RegexError as exc:
            raise RegexError(f"invalid regex {_quote(source)}: {exc}") from None
        try:
            compiled = re2.compile(self.pattern, _OPTIONS)
        except re2.error as exc:
            # RE2 bounds a compiled program's memory (a huge class repeated hundreds of times).
            detail = exc.args[0] if exc.args else exc
            text = detail.decode(errors="replace") if isinstance(detail, bytes) else str(detail)
            raise RegexError(f"invalid regex {_quote(source)}: {text}") from None
        # The compiled program behind google-re2's own `search`: calling it directly skips that
        # wrapper's generator and offset bookkeeping, which cost more than the match itself
        # for a label value (about 1.4 us against 0.7 us per call).
        self._match: Callable[[Any, bytes, int, int], list[tuple[int, int]]] = (
            compiled._regexp.Match
        )

    def search(self, text: str, pos: int = 0) -> GoMatch | None:
        """The leftmost-first match at or after character `pos` (Go's FindStringSubmatchIndex)."""
        data = _encode(text)
        if pos and len(data) != len(text):
            pos = len(_encode(text[:pos]))
        spans = self._match(_UNANCHORED, data, pos, len(data))
        if spans[0] == _NO_MATCH:
            return None
        return GoMatch(text, data, spans)

    def matches(self, text: str) -> bool:
        """Go's MatchString."""
        data = _encode(text)
        return self._match(_UNANCHORED, data, 0, len(data))[0] != _NO_MATCH

    def template(self, template: str) -> Expander:
        """Compile `template` (`$n`, `${n}`, `$name`, `${name}`, `$$`) as Go reads it.

        An unknown or non-participating group expands to "", a `$` not followed by a name is a
        literal `$`, and a name is as long as possible: `$1x` is the group named `1x`.
        """
        if "$" not in template:
            return lambda _: template
        parts: list[str | tuple[int, ...]] = []
        rest = template
        while rest:
            before, dollar, rest = rest.partition("$")
            if before:
                parts.append(before)
            if not dollar:
                break
            if rest.startswith("$"):
                parts.append("$")
                rest = rest[1:]
                continue
            name, rest_after = _template_name(rest)
            if name is None:
                parts.append("$")
                continue
            rest = rest_after
            parts.append(self._groups(name))
        if parts == [(1,)]:
            return lambda match: match.group(1) or ""
        return lambda match: "".join(
            part if isinstance(part, str) else _first_group(match, part) for part in parts
        )

    def _groups(self, name: str) -> tuple[int, ...]:
        """The group indexes `name` refers to (Go: a number, else every group of that name)."""
        names = self.group_names
        # Go reads up to nine digits without a leading zero as a group number, the rest as names.
        if name == "0" or (name.isascii() and name.isdigit() and len(name) <= 9 and name[0] != "0"):
            return (int(name),) if int(name) < len(names) else ()
        return tuple(index for index, group_name in enumerate(names) if group_name == name)

    def expand(self, template: str, match: GoMatch) -> str:
        """`template` expanded for `match` (compiles it each time: use `template` in loops)."""
        return self.template(template)(match)

    def replace_all(self, text: str, template: str | Expander) -> str:
        """Every non-overlapping match replaced by the expanded template (Go's ReplaceAll)."""
        expand = self.template(template) if isinstance(template, str) else template
        data = _encode(text)
        size = len(data)
        match = self._match
        out: list[str] = []
        last_end = search_pos = 0
        while search_pos <= size:
            spans = match(_UNANCHORED, data, search_pos, size)
            start, end = spans[0]
            if start < 0:
                break
            out.append(_decode(data[last_end:start]))
            # Go skips an empty match right after the previous match.
            if end > last_end or start == 0:
                out.append(expand(GoMatch(text, data, spans)))
            last_end = end
            # Go steps over one whole character (UTF-8 sequence) after an empty match.
            width = _char_width(data, search_pos) if search_pos < size else 1
            search_pos = search_pos + width if search_pos + width > end else end
        out.append(_decode(data[last_end:]))
        return "".join(out)

    def __repr__(self) -> str:
        return f"GoRegex({self.source!r})"


def _char_width(data: bytes, pos: int) -> int:
    """Bytes of the UTF-8 sequence starting at `pos` (1 for a stray byte, as Go steps)."""
    lead = data[pos]
    if lead < 0xC0:
        return 1
    width = 2 if lead < 0xE0 else 3 if lead < 0xF0 else 4
    if pos + width > len(data) or any(b & 0xC0 != 0x80 for b in data[pos + 1 : pos + width]):
        return 1
    return width


def _first_group(match: GoMatch, indexes: tuple[int, ...]) -> str:
    for index in indexes:
        found = match.group(index)
        if found is not None:
            return found
    return ""


def _template_name(text: str) -> tuple[str | None, str]:
    """Go's `extract`: the name after `$` (`name` or `{name}`) and the rest, or (None, text)."""
    braced = text.startswith("{")
    body = text[1:] if braced else text
    end = 0
    while end < len(body) and (body[end].isalpha() or body[end].isdecimal() or body[end] == "_"):
        end += 1
    if end == 0:
        return None, text
    if braced:
        if not body.startswith("}", end):
            return None, text
        return body[:end], body[end + 1 :]
    return body[:end], body[end:]


def _quote(text: str) -> str:
    """Quoted for messages as in YAML single quotes: backslashes shown as the user typed them."""
    return "'" + text.replace("'", "''") + "'"
