"""The relabel engine: each action with Prometheus' semantics, vmagent's extensions, properties."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from metricgate.processors.relabel import Drop, RelabelRuleConfig, RuleSet, hashmod


def run(rules: str | list[dict[str, Any]], labels: dict[str, str]) -> dict[str, str] | str:
    """The relabeled labels, or the drop reason. `rules` may be a YAML list, as users write it."""
    parsed = yaml.safe_load(rules) if isinstance(rules, str) else rules
    rule_set = RuleSet([RelabelRuleConfig.model_validate(rule) for rule in parsed])
    result = rule_set.apply(tuple(sorted(labels.items())))
    # Again, with the memos warm; and as the processor calls it, for what can be a series' view.
    assert rule_set.apply(tuple(sorted(labels.items()))) == result
    if _is_view(labels):
        others = tuple(sorted((k, v) for k, v in labels.items() if k != "__name__"))
        names = tuple(k for k, _ in others)
        for _ in range(2):
            found = rule_set.apply_view(labels["__name__"], names, others)
            if isinstance(found, Drop):
                assert found == result
            else:
                name, kept, kept_names = found
                assert tuple(sorted([("__name__", name), *kept])) == result
                assert kept_names == tuple(k for k, _ in kept)  # and every value non-empty
                assert all(value for _, value in kept)
    return result.reason if isinstance(result, Drop) else dict(result)


def _is_view(labels: dict[str, str]) -> bool:
    """True when `labels` are what a translator can give: valid names, no empty values."""
    name = labels.get("__name__", "")
    return (
        re.fullmatch(r"[a-zA-Z_:][a-zA-Z0-9_:]*", name) is not None
        and all(labels.values())
        and all(
            re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", k) and not k.startswith("__")
            for k in labels
            if k != "__name__"
        )
    )


BASE = {"__name__": "m", "a": "foo", "b": "bar", "c": "baz"}
NO_B = {"__name__": "m", "a": "foo", "c": "baz"}


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        # replace, with ${n} and the defaults (separator ";", regex "(.*)", replacement "$1")
        (
            "[{source_labels: [a], regex: 'f(.*)', target_label: d, replacement: 'ch${1}-ch${1}'}]",
            {**BASE, "d": "choo-choo"},
        ),
        (
            """
            - {source_labels: [a, b], regex: 'f(.*);(.*)r', target_label: a,
               replacement: 'b${1}${2}m'}
            - {source_labels: [c, a], regex: '(b).*b(.*)ba(.*)', target_label: d,
               replacement: $1$2$2$3}
            """,
            {**BASE, "a": "boobam", "d": "boooom"},
        ),
        ("[{source_labels: [a, b], target_label: d}]", {**BASE, "d": "foo;bar"}),
        ("[{source_labels: [a, b], separator: '', target_label: d}]", {**BASE, "d": "foobar"}),
        ("[{target_label: d, replacement: static}]", {**BASE, "d": "static"}),
        # no match: no change; the regex is anchored at both ends
        ("[{source_labels: [a], regex: f, target_label: b, replacement: x}]", BASE),
        ("[{source_labels: [a], regex: o+, target_label: b, replacement: x}]", BASE),
        # an empty result deletes the target; a missing source label is ""
        ("[{source_labels: [a], regex: foo, target_label: b, replacement: ''}]", NO_B),
        ("[{source_labels: [missing], target_label: b}]", NO_B),
        ("[{source_labels: [x], regex: '', target_label: d, replacement: e}]", {**BASE, "d": "e"}),
        # target label from capture groups; an invalid expanded name changes nothing
        ("[{source_labels: [a], regex: '(.*)', target_label: '${1}_x'}]", {**BASE, "foo_x": "foo"}),
        (
            "[{source_labels: [a], regex: '.(.*)', target_label: '$1', replacement: '0'}]",
            {**BASE, "oo": "0"},
        ),
        ("[{source_labels: [a], regex: '(.*)', target_label: $1x}]", BASE),
        ("[{source_labels: [a], regex: 'f(o)(o)', target_label: '${3}', replacement: x}]", BASE),
        # keep / drop
        ("[{action: drop, source_labels: [a], regex: '.*o.*'}]", "dropped_by_rule"),
        ("[{action: drop, source_labels: [a], regex: 'f|o'}]", BASE),
        ("[{action: keep, source_labels: [a], regex: no-match}]", "dropped_by_rule"),
        ("[{action: keep, source_labels: [a], regex: 'f.*'}]", BASE),
        ("[{action: keep, source_labels: [missing], regex: ''}]", BASE),
        # keepequal / dropequal
        ("[{action: keepequal, source_labels: [a], target_label: b}]", "dropped_by_rule"),
        ("[{action: dropequal, source_labels: [a], target_label: b}]", BASE),
        ("[{action: dropequal, source_labels: [x], target_label: y}]", "dropped_by_rule"),
        # hashmod (Prometheus' own test vector: md5("baz") -> 976 mod 1000)
        (
            "[{action: hashmod, source_labels: [c], modulus: 1000, target_label: d}]",
            {**BASE, "d": "976"},
        ),
        # labelmap, labeldrop, labelkeep
        (
            "[{action: labelmap, regex: '(b|c)', replacement: 'x_${1}'}]",
            {**BASE, "x_b": "bar", "x_c": "baz"},
        ),
        ("[{action: labelmap, regex: '(c)', replacement: '${1}_'}]", {**BASE, "c_": "baz"}),
        ("[{action: labeldrop, regex: 'b|c'}]", {"__name__": "m", "a": "foo"}),
        ("[{action: labelkeep, regex: '__name__|a'}]", {"__name__": "m", "a": "foo"}),
        ("[{action: labelkeep, regex: a}]", "invalid_metric_name"),
        # lowercase / uppercase
        ("[{action: uppercase, source_labels: [a, b], target_label: u}]", {**BASE, "u": "FOO;BAR"}),
        ("[{action: lowercase, source_labels: [u], target_label: b}]", NO_B),
        # __name__ is a label like any other
        (
            "[{source_labels: [__name__], regex: '(.*)', target_label: __name__, "
            "replacement: '${1}_x'}]",
            {**BASE, "__name__": "m_x"},
        ),
        ("[{target_label: __name__, replacement: 1bad}]", "invalid_metric_name"),
    ],
)
def test_prometheus_actions(rules: str, expected: dict[str, str] | str) -> None:
    assert run(rules, BASE) == expected


def test_target_label_from_capture_groups() -> None:
    rules = """
    - source_labels: [x]
      regex: 'some-([^-]+)-([^,]+)'
      target_label: '${1}'
      replacement: '${2}'
    """
    labels = {"__name__": "m", "x": "some-name-value"}
    assert run(rules, labels) == {**labels, "name": "value"}


@pytest.mark.parametrize(
    ("value", "modulus"),
    [("baz", 1000), ("foo\nbar", 1000), ("", 7), ("10.0.0.1:9100", 8), ("ünïcødé", 2**63)],
)
def test_hashmod_is_md5_low_eight_bytes_big_endian(value: str, modulus: int) -> None:
    digest = hashlib.md5(value.encode("utf-8")).digest()
    expected = int.from_bytes(digest[8:16], "big") % modulus
    assert hashmod(value, modulus) == expected
    rules = [{"action": "hashmod", "source_labels": ["v"], "modulus": modulus, "target_label": "s"}]
    result = run(rules, {"__name__": "m", "v": value})
    assert isinstance(result, dict) and result["s"] == str(expected)
    assert hashmod("foo\nbar", 1000) == 734  # Prometheus' test vector


def test_invalid_names_made_by_rules_drop_the_series() -> None:
    labels = {"__name__": "m", "x_1": "v"}
    assert run([{"action": "labelmap", "regex": "x_(.*)", "replacement": "$1"}], labels) == (
        "invalid_label_name"
    )
    assert run([{"action": "labelmap_all", "regex": "x_", "replacement": ""}], labels) == (
        "invalid_label_name"
    )
    assert run([{"action": "labeldrop", "regex": "__name__"}], labels) == "invalid_metric_name"


def test_go_case_mapping() -> None:
    rules = [
        {"action": "uppercase", "source_labels": ["v"], "target_label": "up"},
        {"action": "lowercase", "source_labels": ["v"], "target_label": "low"},
    ]
    result = run(rules, {"__name__": "m", "v": "Straße İstanbul ΑΣ"})
    assert result == {
        "__name__": "m",
        "v": "Straße İstanbul ΑΣ",
        "up": "STRAßE İSTANBUL ΑΣ",  # Go keeps ß (no single-character upper case)
        "low": "straße istanbul \u03b1\u03c3",  # per character: no final sigma; İ -> i
    }


def test_labelmap_collision_follows_prometheus_builder_order() -> None:
    # Both labels map to `x`; Prometheus walks input labels in sorted order, so `b_x` wins...
    rules = [{"action": "labelmap", "regex": "[ab]_(x)", "replacement": "$1"}]
    assert run(rules, {"__name__": "m", "a_x": "1", "b_x": "2"})["x"] == "2"  # type: ignore[index]
    # ...and labels set by an earlier rule come after the input labels, in the order they were set.
    rules = [
        {"target_label": "b_x", "replacement": "set-first"},
        {"target_label": "a_x", "replacement": "set-second"},
        *rules,
    ]
    assert run(rules, {"__name__": "m", "c": "1"})["x"] == "set-second"  # type: ignore[index]


def test_scratch_labels_added_by_rules_are_removed_but_input_ones_stay() -> None:
    rules = """
    - {target_label: __tmp_section, replacement: api}
    - {source_labels: [__tmp_section], target_label: section}
    """
    labels = {"__name__": "m", "__meta_kept": "yes"}
    assert run(rules, labels) == {"__name__": "m", "__meta_kept": "yes", "section": "api"}


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        ("""[{action: keep, if: 'm{a="foo"}'}]""", BASE),
        # vmagent: a `keep` rule whose `if` does not match drops the series
        ("""[{action: keep, if: 'm{a="other"}'}]""", "dropped_by_rule"),
        ("""[{action: drop, if: '{b=~"b.*"}'}]""", "dropped_by_rule"),
        ("""[{action: drop, if: ['{b="x"}', '{c="baz"}']}]""", "dropped_by_rule"),
        ("""[{action: drop, if: '{b="x"} or {c="y"}'}]""", BASE),
        ("""[{if: '{a!="foo"}', target_label: d, replacement: x}]""", BASE),
        ("""[{if: '{missing=""}', target_label: d, replacement: x}]""", {**BASE, "d": "x"}),
        ("[{action: keep, source_labels: [a], regex: [bar, foo]}]", BASE),
        ("[{action: keep_metrics, regex: 'm|n'}]", BASE),
        ("[{action: drop_metrics, regex: [x, m]}]", "dropped_by_rule"),
        ("""[{action: keep_metrics, regex: x, if: '{a="no"}'}]""", "dropped_by_rule"),
        (
            "[{action: replace_all, source_labels: [a], target_label: a, regex: o, "
            "replacement: '0'}]",
            {**BASE, "a": "f00"},
        ),
        (
            "[{action: labelmap_all, regex: '^([abc])$', replacement: 'l_$1'}]",
            {"__name__": "m", "l_a": "foo", "l_b": "bar", "l_c": "baz"},
        ),
        ("[{action: keep_if_equal, source_labels: [a, b]}]", "dropped_by_rule"),
        ("[{action: drop_if_equal, source_labels: [a, b]}]", BASE),
        ("[{action: drop_if_equal, source_labels: [x, y]}]", "dropped_by_rule"),
    ],
)
def test_vmagent_extensions(rules: str, expected: dict[str, str] | str) -> None:
    assert run(rules, BASE) == expected


# -- properties --------------------------------------------------------------------------------

NAMES = st.sampled_from(["a", "b", "c", "ab", "ba", "job", "x_1", "cab"])
VALUES = st.text(alphabet="abcAB01-_.:é ", min_size=1, max_size=6)
LABELS = st.dictionaries(NAMES, VALUES, max_size=6).map(lambda d: {"__name__": "metric", **d})
PATTERNS = st.sampled_from(["a", "a.*", ".*b", "(a|b)c?", "[ab]+", "x_1", "ab|ba", "j.b", ""])


@settings(max_examples=200, deadline=None)
@given(LABELS, st.lists(NAMES, min_size=1, max_size=3), PATTERNS, st.sampled_from(["keep", "drop"]))
def test_keep_and_drop_are_idempotent_and_complementary(
    labels: dict[str, str], sources: list[str], regex: str, action: str
) -> None:
    rule = {"action": action, "source_labels": sources, "regex": regex}
    once = run([rule], labels)
    assert once in (labels, "dropped_by_rule")
    if isinstance(once, dict):
        assert run([rule], once) == once
    other = {**rule, "action": "drop" if action == "keep" else "keep"}
    assert (run([other], labels) == labels) != (once == labels)


@settings(max_examples=200, deadline=None)
@given(LABELS, PATTERNS)
def test_labeldrop_removes_exactly_the_matching_names(labels: dict[str, str], regex: str) -> None:
    matching = {n for n in labels if re.fullmatch(regex, n)}
    assert run([{"action": "labeldrop", "regex": regex}], labels) == {
        n: v for n, v in labels.items() if n not in matching
    }


@settings(max_examples=200, deadline=None)
@given(LABELS, PATTERNS)
def test_labelkeep_keeps_exactly_the_matching_names(labels: dict[str, str], regex: str) -> None:
    keep = f"__name__|{regex}"
    assert run([{"action": "labelkeep", "regex": keep}], labels) == {
        n: v for n, v in labels.items() if re.fullmatch(keep, n)
    }


@settings(max_examples=200, deadline=None)
@given(LABELS, st.lists(NAMES, max_size=3), NAMES, st.sampled_from(["zz", "z(.*)", "(.*)z+", "$1"]))
def test_replace_with_a_regex_that_cannot_match_changes_nothing(
    labels: dict[str, str], sources: list[str], target: str, regex: str
) -> None:
    rule = {"source_labels": sources, "regex": regex, "target_label": target, "replacement": "new"}
    if regex == "$1":  # matches only the empty string: a non-empty joined value never matches
        labels = {**labels, **dict.fromkeys(sources, "v")}
    assert run([rule], labels) == labels


MEMO_RULE_SETS = [
    "[{source_labels: [a], regex: '(f)(.*)', target_label: '${1}x', replacement: '$2'}]",
    "[{source_labels: [a, b], separator: '-', target_label: c}, {action: labeldrop, regex: a}]",
    "[{source_labels: [b], action: hashmod, modulus: 3, target_label: __tmp_h},"
    " {source_labels: [__tmp_h], regex: '0', action: drop}]",
    "[{action: labelkeep, regex: '__name__|a|c'}, {source_labels: [c], action: lowercase,"
    " target_label: c}]",
    "[{action: keepequal, source_labels: [a], target_label: b}]",
    "[{if: '{b=~\"ba.\"}', target_label: d, replacement: yes}, {action: drop_metrics, regex: n}]",
    "[{source_labels: [__name__], regex: '(.*)', target_label: __name__, replacement: 'x_${1}'},"
    " {action: replace_all, source_labels: [c], target_label: c, regex: a, replacement: b}]",
    # Rules that set a label (or the name) the series may have already, to the value it has:
    # another series of the same key with another value there must get the rules' value too.
    "[{target_label: c, replacement: foo}, {source_labels: [a], target_label: __name__,"
    " regex: 'f.*', replacement: m}]",
    "[{source_labels: [b], target_label: a, regex: '(ba).', replacement: '${1}r'}]",
]
MEMO_LABELS = st.fixed_dictionaries(
    {"__name__": st.sampled_from(["m", "n"])},
    optional={k: st.sampled_from(["foo", "bar", "baz", "Fa"]) for k in ("a", "b", "c", "z")},
)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(MEMO_RULE_SETS), st.lists(MEMO_LABELS, min_size=1, max_size=30))
def test_remembered_outcomes_equal_running_the_rules(
    rules: str, label_sets: list[dict[str, str]]
) -> None:
    configs = [RelabelRuleConfig.model_validate(rule) for rule in yaml.safe_load(rules)]
    shared = RuleSet(configs)  # its memo is warmed by earlier series of the same shape
    for labels in label_sets:
        want = RuleSet(configs).apply(tuple(sorted(labels.items())))
        others = tuple(sorted((k, v) for k, v in labels.items() if k != "__name__"))
        got = shared.apply_view(labels["__name__"], tuple(k for k, _ in others), others)
        if isinstance(got, Drop):
            assert got == want
        else:
            assert tuple(sorted([("__name__", got[0]), *got[1]])) == want
            assert got[2] == tuple(k for k, _ in got[1])  # the names a remembered edit leaves


def test_a_label_set_to_the_value_it_had_is_set_for_the_next_series_of_its_shape() -> None:
    """The remembered outcome of the first series must not read "left alone" for a label the
    rules set to the value that series happened to have."""
    configs = [
        RelabelRuleConfig.model_validate(rule)
        for rule in (
            {"target_label": "env", "replacement": "prod"},
            {"source_labels": ["job"], "target_label": "__name__", "replacement": "m"},
        )
    ]
    shared = RuleSet(configs)
    for name, env in (("m", "prod"), ("other", "dev"), ("m", "prod"), ("x", "")):
        labels = (("env", env), ("job", "j")) if env else (("job", "j"),)
        got = shared.apply_view(name, tuple(k for k, _ in labels), labels)
        assert got == ("m", (("env", "prod"), ("job", "j")), ("env", "job")), (name, env)
