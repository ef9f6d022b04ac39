"""Go (RE2) regexes: syntax accepted and refused, classes, flags, Expand, linear-time matching."""

from __future__ import annotations

import subprocess
import sys

import pytest

from metricgate.regex import GoRegex, RegexError


def groups(pattern: str, text: str) -> tuple[str | None, ...] | None:
    match = GoRegex(pattern).search(text)
    return None if match is None else match.groups()


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        # anchored at both ends, like Prometheus' ^(?:re)$
        ("foo", "foo", True),
        ("foo", "xfoo", False),
        ("foo", "foox", False),
        ("a|b", "b", True),
        ("a|bc", "ab", False),
        # `$` is end of text, never "before a trailing newline" (Python's `$`)
        ("x$", "x\n", False),
        ("x", "x\n", False),
        ("(?m)x$\n", "x\n", True),
        # `.` does not match a newline unless (?s)
        (".*", "a\nb", False),
        ("(?s).*", "a\nb", True),
        # \d \w \s \b are ASCII-only in RE2
        (r"\d+", "123", True),
        (r"\d+", "١٢٣", False),
        (r"\w+", "héllo", False),
        (r"\s", "\v", False),
        (r"\s", "\u00a0", False),
        (r"[^\d]", "٣", True),
        (r".*\bfoo\b.*", "a foo b", True),
        (r".*\bfoo\b.*", "éfooé", True),
        (r"[[:alpha:]]+", "abcXYZ", True),
        (r"[[:^digit:]]+", "abc", True),
        (r"[[:word:]]+", "a_1", True),
        (r"\pL+", "héllo", True),
        (r"\p{Lu}\P{Lu}+", "Émile", True),
        # (?i) folds by Unicode simple case folding orbits, as Go does
        ("(?i)k", "K", True),
        ("(?i)k", "\u212a", True),
        ("(?i)s", "\u017f", True),
        ("(?i)[a-c]+", "AbC", True),
        ("(?i)[^a]", "A", False),
        ("(?i)straße", "STRAßE", True),
        ("(?i:a)b", "AB", False),
        # flags last until the enclosing group closes, across `|`
        ("a(?i)b|c", "C", True),
        ("(a(?i)b)c", "aBC", False),
        ("(a(?i)b)c", "aBc", True),
        # `{` that is not a repeat is a literal; {,n} is not a repeat in RE2
        ("a{,3}", "a{,3}", True),
        ("a{,3}", "aa", False),
        ("a{2}", "aa", True),
        ("a{1,2}b{0}", "aa", True),
        ("x{01}", "x{01}", True),
        # \Q..\E quotes; a quantifier after it binds to the last character only
        (r"\Qa.b\E+", "a.bbb", True),
        (r"\Qa.b\E+", "a.ba.b", False),
        # escapes
        (r"\x41\x{1F600}\101\0", "A\U0001f600A\x00", True),
        (r"\.\*\_", ".*_", True),
        (r"[\]\-a]+", "]-a", True),
        ("[]a]+", "]a", True),
        ("[a-]+", "a-", True),
        (r"\A\z", "", True),
    ],
)
def test_matching(pattern: str, text: str, expected: bool) -> None:
    assert GoRegex(pattern).matches(text) is expected


def test_ungreedy_flag_swaps_greediness() -> None:
    assert groups("(a+)(a*)", "aaa") == ("aaa", "")
    assert groups("(?U)(a+)(a*)", "aaa") == ("a", "aa")
    assert groups("(?U)(a+?)(a*)", "aaa") == ("aaa", "")


def test_submatches_are_leftmost_first() -> None:
    assert groups("(a|ab)(c|bcd)(d*)", "abcd") == ("a", "bcd", "")
    assert groups("(a*)(a)", "aaa") == ("aa", "a")
    assert groups("(x)?y", "y") == (None,)


def test_prometheus_wraps_the_text_so_an_unbalanced_pattern_means_what_it_means_in_go() -> None:
    # ^(?:a)|(b)$: Prometheus accepts it; it matches "a..." or "...b".
    regex = GoRegex("a)|(b")
    assert regex.matches("axx")
    assert regex.matches("xxb")
    assert not regex.matches("xbx")


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        (r"(a)\1", "backreference \\1 is not supported"),
        (r"\8", "backreference \\8 is not supported"),
        ("(?=a)a", "lookahead (?=...) is not supported"),
        ("(?!a)b", "negative lookahead (?!...) is not supported"),
        ("(?<=a)b", "lookbehind (?<=...) is not supported"),
        ("(?<!a)b", "negative lookbehind (?<!...) is not supported"),
        ("(?>a)", "atomic group"),
        ("(?P<n>a)(?P=n)", "backreference (?P=...) is not supported"),
        ("a*+", "invalid nested repetition operator"),
        ("a**", "invalid nested repetition operator"),
        ("a{2}{3}", "invalid nested repetition operator"),
        ("*a", "missing argument to repetition operator"),
        ("a|*", "missing argument to repetition operator"),
        ("a{1001}", "invalid repeat count {1001}"),
        ("(a{100}){11}", "nested counts exceed 1000"),
        ("a{3,2}", "invalid repeat count {3,2}"),
        ("(a", "missing closing )"),
        ("a)", "unexpected )"),
        ("[a", "missing closing ]"),
        ("[z-a]", "invalid character class range 'z-a'"),
        ("[[:foo:]]", "invalid character class '[:foo:]'"),
        (r"\Z", "invalid escape sequence \\Z (RE2 spells end of text \\z)"),
        (r"\e", "invalid escape sequence \\e"),
        (r"[\b]", "invalid escape sequence \\b"),
        (r"\C", "\\C (any byte) is not supported"),
        (r"\p{Greek}", "unsupported Unicode class"),
        ("(?P<a-b>x)", "invalid named capture"),
        ("(?i-)", "invalid or unsupported Perl syntax"),
        ("(?x)a", "invalid or unsupported Perl syntax"),
    ],
)
def test_constructs_go_refuses_are_errors(pattern: str, message: str) -> None:
    with pytest.raises(RegexError) as info:
        GoRegex(pattern)
    assert message in str(info.value)
    assert f"'{pattern}'" in str(info.value)


def test_numbered_and_named_groups_match_go_numbering() -> None:
    regex = GoRegex("(?P<first>a)(b)(?<1x>c)")
    assert regex.group_names == (None, "first", None, "1x")
    match = regex.search("abc")
    assert match is not None
    assert regex.expand("$first-$2-${1x}-$3", match) == "a-b-c-c"


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("$1", "a"),
        ("${1}", "a"),
        ("$1x", ""),  # the group named `1x`, which does not exist: Go's rule
        ("${1}x", "ax"),
        ("$10", ""),  # group 10, not group 1 then 0
        ("$2$1", "ba"),
        ("$$1", "$1"),
        ("$", "$"),
        ("$-", "$-"),
        ("${1", "${1"),
        ("${}", "${}"),
        ("$01", ""),  # a leading zero makes it a name
        ("$name", "b"),
        ("${name}s", "bs"),
        ("$namex", ""),
        ("$3", ""),  # group 3 exists but did not participate
        ("a$é", "a"),  # letters are name characters (unknown group -> "")
    ],
)
def test_expand_follows_go(template: str, expected: str) -> None:
    regex = GoRegex("(a)(?P<name>b)(c)?")
    match = regex.search("ab")
    assert match is not None
    assert regex.expand(template, match) == expected


@pytest.mark.parametrize(
    ("pattern", "text", "template", "expected"),
    [
        ("x*", "abxd", "-", "-a-b-d-"),  # Python's re.sub gives -a-b--d-
        ("a|", "baaac", "-", "-b---c-"),
        ("[.-]", "a.b-c", "_", "a_b_c"),
        ("(o+)", "foo boo", "[$1]", "f[oo] b[oo]"),
        ("^", "abc", "x", "xabc"),
        ("", "", "x", "x"),
    ],
)
def test_replace_all_follows_go(pattern: str, text: str, template: str, expected: str) -> None:
    assert GoRegex(pattern, anchored=False).replace_all(text, template) == expected


@pytest.mark.parametrize(
    ("pattern", "text", "template", "expected"),
    [
        ("x*", "héllo", "-", "-h-é-l-l-o-"),  # an empty match steps over a whole character
        ("é", "aébé", "[$0]", "a[é]b[é]"),
        ("(.)", "日本", "<$1>", "<日><本>"),
    ],
)
def test_replace_all_counts_characters_not_bytes(
    pattern: str, text: str, template: str, expected: str
) -> None:
    assert GoRegex(pattern, anchored=False).replace_all(text, template) == expected


def test_non_ascii_text_gives_character_offsets_and_groups() -> None:
    regex = GoRegex("(b+)", anchored=False)
    match = regex.search("ééébbx")
    assert match is not None
    assert match.span() == (3, 5) and match.group(1) == "bb"
    later = regex.search("ébéb", 2)
    assert later is not None and later.span(1) == (3, 4)
    assert GoRegex("(.*)").search("a\udc80b") is not None  # a lone surrogate (JSON \\udc80)


def test_pathological_patterns_take_linear_time() -> None:
    # Each of these needs about 2^n steps in a backtracking engine (Python's re would not finish
    # in a lifetime); RE2 answers at once. Run in a child so a regression fails instead of hanging.
    script = """
from metricgate.regex import GoRegex
checks = [
    ("(a+)+b", "a" * 5000 + "!"),
    ("(x+x+)+y", "x" * 5000),
    ("(a|aa)*c", "a" * 5000),
    ("(.*a){20}", "a" * 5000 + "b"),
]
for pattern, text in checks:
    assert not GoRegex(pattern).matches(text), pattern
    assert GoRegex(pattern).search(text) is None, pattern
    GoRegex(pattern, anchored=False).replace_all(text, "x")
print("ok")
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.stdout.strip() == "ok", done.stderr


def test_a_pattern_too_large_for_the_engine_is_a_clean_error() -> None:
    with pytest.raises(RegexError) as caught:
        GoRegex(r"\pL{1000}")
    assert str(caught.value) == r"invalid regex '\pL{1000}': pattern too large - compile failed"
