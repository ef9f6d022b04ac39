"""Go regular expressions in Python: matching, `Expand` and `ReplaceAllString` as Go does them.

`GoRegex` compiles a Go (RE2) pattern through `syntax.translate` and offers the operations the
relabel rules need, with Go's exact semantics: `search` is Go's leftmost-first match, `expand`
follows `Regexp.Expand` (`$1x` names the group `1x`, not group 1 then `x`; unknown or unmatched
groups expand to ""), and `replace_all` follows `ReplaceAllString` (an empty match right after a
match is not replaced, unlike Python's `re.sub`).

Invariant: a `GoRegex` built from a pattern matches what Go's `regexp.MustCompile` of the same
pattern matches. Python backtracks where RE2 does not, so a pathological pattern can be slow;
relabel verdicts are cached per series, which bounds how often that cost is paid.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from metricgate.processors.relabel.syntax import RegexError, translate

__all__ = ["Expander", "GoRegex", "RegexError"]


Expander = Callable[[re.Match[str]], str]
"""A template compiled against one regex: match -> expanded text."""


class GoRegex:
    """A compiled Go regular expression: Go's matching, submatches, Expand and ReplaceAll."""

    __slots__ = ("group_names", "pattern", "search", "source")

    def __init__(self, source: str, anchored: bool = True) -> None:
        self.source = source
        """The expression as the user wrote it (without the anchoring Prometheus adds)."""
        # Prometheus anchors by wrapping the text, so a pattern like `a)|(b` parses as Go parses it.
        try:
            text, self.group_names = translate(f"^(?:{source})$" if anchored else source)
        except RegexError as exc:
            raise RegexError(f"invalid regex {_quote(source)}: {exc}") from None
        try:
            self.pattern = re.compile(text)
        except (re.error, RecursionError, OverflowError) as exc:  # pragma: no cover - our bug
            raise RegexError(f"cannot compile {_quote(source)}: {exc}") from exc
        self.search: Callable[..., re.Match[str] | None] = self.pattern.search
        """`search(text, pos=0)`: the leftmost-first match (Go's FindStringSubmatchIndex)."""

    def matches(self, text: str) -> bool:
        """Go's MatchString."""
        return self.pattern.search(text) is not None

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

    def expand(self, template: str, match: re.Match[str]) -> str:
        """`template` expanded for `match` (compiles it each time: use `template` in loops)."""
        return self.template(template)(match)

    def replace_all(self, text: str, template: str | Expander) -> str:
        """Every non-overlapping match replaced by the expanded template (Go's ReplaceAll)."""
        expand = self.template(template) if isinstance(template, str) else template
        search = self.pattern.search
        out: list[str] = []
        last_end = search_pos = 0
        while search_pos <= len(text):
            match = search(text, search_pos)
            if match is None:
                break
            start, end = match.span()
            out.append(text[last_end:start])
            # Go skips an empty match right after the previous match.
            if end > last_end or start == 0:
                out.append(expand(match))
            last_end = end
            search_pos = search_pos + 1 if search_pos + 1 > end else end
        out.append(text[last_end:])
        return "".join(out)

    def __repr__(self) -> str:
        return f"GoRegex({self.source!r})"


def _first_group(match: re.Match[str], indexes: tuple[int, ...]) -> str:
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
