"""The relabeling engine: Prometheus `relabel_configs` semantics over one label set.

A label set is the series' Prometheus view (`__name__` included). Rules run in order on a
`LabelBuilder`, which behaves like Prometheus' `labels.Builder`: an empty value means no label
(setting "" deletes), and `labelmap` walks a snapshot of the labels in the builder's order (input
labels sorted, then labels set by earlier rules in the order they were first set), so when two
labels map onto one name the same one wins as in Prometheus. Per action:

- `replace`: regex (anchored) on the joined source values; no match, or a `$`-expanded
  `target_label` that is no valid label name, changes nothing; an empty result deletes the label.
- `hashmod`: MD5 of the joined value; its last 8 bytes as a big-endian uint64, modulo `modulus`
  (Prometheus' rule; vmagent uses xxhash, so its buckets differ).
- `lowercase`/`uppercase`: Go's per-character simple case mapping (`ß` stays `ß`).
- `keep`/`drop`, `keepequal`/`dropequal`, `labelmap`, `labeldrop`/`labelkeep`: as Prometheus.
- vmagent: `if:` guards any rule (on mismatch the rule is skipped, except that `keep` drops);
  `keep_metrics`/`drop_metrics` are keep/drop on `__name__`; `replace_all`/`labelmap_all` replace
  every (unanchored) match; `keep_if_equal`/`drop_if_equal` compare the source label values.

After the last rule, labels starting with `__` (other than `__name__`) that the rules added are
removed, so `__tmp_*` scratch labels never leave (vmagent does the same; Prometheus keeps them on
metric relabeling). Labels that came with the input are never removed implicitly. Finally the
metric name and every label name must be valid, or the series is dropped with a reason.

Invariant: `RuleSet.apply` depends only on its input labels, so callers may cache it per series.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeVar

from metricgate.relabel.config import (
    DEFAULT_REGEX,
    DEFAULT_REPLACEMENT,
    DEFAULT_SEPARATOR,
    RelabelRuleConfig,
)
from metricgate.relabel.go_strings import go_lower, go_upper, hashmod
from metricgate.relabel.memo import OutcomeMemo, Relabeled, apply_edit, read_labels
from metricgate.translate.names import LABEL_NAME_RE, is_label_name, is_metric_name

__all__ = [
    "Drop",
    "LabelBuilder",
    "LabelPairs",
    "Outcome",
    "Rule",
    "RuleSet",
    "Step",
    "hashmod",
]

LabelPairs = tuple[tuple[str, str], ...]
"""Labels sorted by name, names unique, values non-empty; `__name__` included."""

Outcome = Literal["applied", "skipped", "dropped"]


@dataclass(frozen=True, slots=True)
class Drop:
    """A verdict: the series is dropped. `reason` is a telemetry label, `detail` for logs."""

    reason: str
    detail: str


@dataclass(frozen=True, slots=True)
class Step:
    """One rule's effect, for `metricgate relabel-test`: what it did and the labels after it."""

    rule: Rule
    outcome: Outcome
    labels: LabelPairs


class LabelBuilder:
    """A mutable label set with Prometheus' `labels.Builder` semantics (see module docstring)."""

    __slots__ = ("added", "values")

    def __init__(self, labels: Iterable[tuple[str, str]]) -> None:
        self.values: dict[str, str] = dict(sorted(labels))
        self.added: set[str] = set()

    def get(self, name: str) -> str:
        return self.values.get(name, "")

    def set(self, name: str, value: str) -> None:
        if not value:
            self.delete(name)
        elif name in self.added:
            self.values[name] = value
        else:
            self.values.pop(name, None)
            self.values[name] = value
            self.added.add(name)

    def delete(self, name: str) -> None:
        self.values.pop(name, None)
        self.added.discard(name)

    def pairs(self) -> LabelPairs:
        return tuple(sorted(self.values.items()))


class Rule:
    """One compiled rule; `apply` runs it on a `LabelBuilder`."""

    def __init__(self, config: RelabelRuleConfig) -> None:
        self.config = config
        self.action = config.action
        self.source_labels = tuple(config.source_labels or ())
        if self.action in ("keep_metrics", "drop_metrics"):
            self.source_labels = ("__name__",)
        self.separator = config.separator
        self.regex = config.compiled_regex
        self.target_label = config.target_label
        self.replacement = config.replacement
        self.modulus = config.modulus
        self.selector = config.selector
        self._expand_target = self.regex.template(self.target_label)
        self._expand_replacement = self.regex.template(self.replacement)
        self._run: Callable[[LabelBuilder], bool] = getattr(self, f"_{self.action}")
        self._memo: dict[object, object] = {}
        """Text -> what the regex made of it (a match verdict, or a `replace` result; for
        `labeldrop`/`labelkeep` the label names -> those to delete, for `labelmap` and
        `labelmap_all` the label names -> their new names): new series mostly repeat what rules
        look at, so the regex runs once per distinct text."""
        if len(self.source_labels) == 1:
            self._joined = self._single  # type: ignore[method-assign]

    def apply(self, labels: LabelBuilder) -> Outcome:
        if self.selector is not None and not self.selector.matches(labels.values):
            # vmagent: a `keep` rule whose `if` does not match drops the series.
            return "dropped" if self.action in ("keep", "keep_metrics") else "skipped"
        return "applied" if self._run(labels) else "dropped"

    def _remember(self, text: object, found: _T) -> _T:
        if len(self._memo) >= _MEMO_SIZE:
            self._memo.clear()
        self._memo[text] = found
        return found

    def _matches(self, text: str) -> bool:
        """`regex.matches(text)`, memoised (anchored rules: Go's MatchString)."""
        found = self._memo.get(text)
        if found is None:
            found = self._remember(text, self.regex.matches(text))
        return found is True

    def _joined(self, labels: LabelBuilder) -> str:
        values = labels.values
        return self.separator.join([values.get(name, "") for name in self.source_labels])

    def _single(self, labels: LabelBuilder) -> str:
        return labels.values.get(self.source_labels[0], "")

    def _replace(self, labels: LabelBuilder) -> bool:
        joined = self._joined(labels)
        found = self._memo.get(joined, _UNSET)
        if found is _UNSET:
            found = None
            match = self.regex.search(joined)
            if match is not None:
                target = self._expand_target(match)
                if LABEL_NAME_RE.match(target):
                    found = (target, self._expand_replacement(match))
            self._remember(joined, found)
        if found is not None:
            labels.set(*found)  # type: ignore[misc]
        return True

    def _keep(self, labels: LabelBuilder) -> bool:
        return self._matches(self._joined(labels))

    def _drop(self, labels: LabelBuilder) -> bool:
        return not self._matches(self._joined(labels))

    _keep_metrics = _keep
    _drop_metrics = _drop

    def _keepequal(self, labels: LabelBuilder) -> bool:
        return labels.get(self.target_label) == self._joined(labels)

    def _dropequal(self, labels: LabelBuilder) -> bool:
        return labels.get(self.target_label) != self._joined(labels)

    def _keep_if_equal(self, labels: LabelBuilder) -> bool:
        return len({labels.get(name) for name in self.source_labels}) == 1

    def _drop_if_equal(self, labels: LabelBuilder) -> bool:
        return len({labels.get(name) for name in self.source_labels}) != 1

    def _hashmod(self, labels: LabelBuilder) -> bool:
        labels.set(self.target_label, str(hashmod(self._joined(labels), self.modulus)))
        return True

    def _lowercase(self, labels: LabelBuilder) -> bool:
        labels.set(self.target_label, go_lower(self._joined(labels)))
        return True

    def _uppercase(self, labels: LabelBuilder) -> bool:
        labels.set(self.target_label, go_upper(self._joined(labels)))
        return True

    def _labelmap(self, labels: LabelBuilder) -> bool:
        values = dict(labels.values)  # the values before this rule, as the loop always read
        for name, new_name in self._renames(tuple(values)):
            labels.set(new_name, values[name])
        return True

    def _renames(self, names: tuple[str, ...]) -> list[tuple[str, str]]:
        """(name, new name) for each label name the regex matches, in order; a function of
        the names alone, so memoised on them (new series mostly repeat a name set)."""
        renames: Any = self._memo.get(names)
        if renames is None:
            search, replace_all = self.regex.search, self.regex.replace_all
            renames = self._remember(
                names,
                [(n, replace_all(n, self._expand_replacement)) for n in names if search(n)],
            )
        return renames  # type: ignore[no-any-return]

    def _labeldrop(self, labels: LabelBuilder) -> bool:
        return self._delete(labels, keep=False)

    def _labelkeep(self, labels: LabelBuilder) -> bool:
        return self._delete(labels, keep=True)

    def _delete(self, labels: LabelBuilder, *, keep: bool) -> bool:
        names = tuple(labels.values)
        doomed: Any = self._memo.get(names)
        if doomed is None:
            search = self.regex.search
            doomed = self._remember(names, [n for n in names if (search(n) is None) is keep])
        for name in doomed:
            labels.delete(name)
        return True

    def _replace_all(self, labels: LabelBuilder) -> bool:
        joined = self._joined(labels)
        replaced = self.regex.replace_all(joined, self._expand_replacement)
        if replaced != joined:
            labels.set(self.target_label, replaced)
        return True

    def _labelmap_all(self, labels: LabelBuilder) -> bool:
        renamed: dict[str, str] = {}
        names = tuple(labels.values)
        new_names: Any = self._memo.get(names)
        if new_names is None:
            replace_all = self.regex.replace_all
            new_names = self._remember(
                names, [replace_all(n, self._expand_replacement) for n in names]
            )
        for name, new_name in zip(names, new_names, strict=True):
            renamed[new_name] = labels.values[name]
            if new_name != name:
                labels.added.add(new_name)
        labels.values = renamed
        labels.added &= renamed.keys()
        return True

    def describe(self) -> str:
        """The rule as one line of flow-style YAML, defaults left out."""
        config = self.config
        parts = [f"action: {config.action}"]
        if config.if_ is not None:
            selectors = [config.if_] if isinstance(config.if_, str) else config.if_
            text = ", ".join(_yaml_quote(item) for item in selectors)
            parts.append(f"if: {text}" if isinstance(config.if_, str) else f"if: [{text}]")
        if config.source_labels is not None:
            parts.append(f"source_labels: [{', '.join(config.source_labels)}]")
        if config.separator != DEFAULT_SEPARATOR:
            parts.append(f"separator: {_yaml_quote(config.separator)}")
        if config.regex is not None and config.regex != DEFAULT_REGEX:
            parts.append(f"regex: {_yaml_quote(config.regex)}")
        if config.modulus:
            parts.append(f"modulus: {config.modulus}")
        if config.target_label:
            parts.append(f"target_label: {config.target_label}")
        if config.replacement != DEFAULT_REPLACEMENT:
            parts.append(f"replacement: {_yaml_quote(config.replacement)}")
        return "{" + ", ".join(parts) + "}"


class RuleSet:
    """An ordered list of rules and the checks that follow them (see module docstring)."""

    def __init__(self, configs: Sequence[RelabelRuleConfig]) -> None:
        self.rules = [Rule(config) for config in configs]
        reads = read_labels(self.rules)
        self._memo = None if reads is None else OutcomeMemo(reads)

    def apply(
        self, labels: Iterable[tuple[str, str]], trace: list[Step] | None = None
    ) -> LabelPairs | Drop:
        """The relabeled label set, or why the series is dropped. `trace` collects each step."""
        builder = LabelBuilder((name, value) for name, value in labels if value)
        return self._run(builder, tuple(builder.values), trace, check_all=True)

    def apply_target(self, labels: Iterable[tuple[str, str]]) -> LabelPairs | Drop:
        """`apply` for a scrape target's labels (Prometheus' `relabel_configs`): there is no
        `__name__` to check, and `__` labels the rules set (`__param_target`, `__address__`) stay
        for the caller, who removes them after reading them."""
        builder = LabelBuilder((name, value) for name, value in labels if value)
        for rule in self.rules:
            if rule.apply(builder) == "dropped":
                return Drop("dropped_by_rule", f"dropped by {rule.describe()}")
        for name in builder.values:
            if not is_label_name(name):
                return Drop("invalid_label_name", f"invalid label name {name!r}")
        return tuple(sorted(builder.values.items()))

    def apply_view(self, name: str, names: tuple[str, ...], pairs: LabelPairs) -> Relabeled | Drop:
        """`apply` for a series' Prometheus view, answering (`__name__`, other labels, their
        names).

        `name` is a valid metric name, `pairs` the other labels: sorted, valid names, non-empty
        values (what the translator guarantees), `names` their names. Only labels the rules set
        are checked afterwards. Unchanged labels keep their pair objects (series share them).
        """
        memo = self._memo
        key: tuple[object, ...] = ()
        if memo is not None:
            key = memo.key(name, names, pairs)
            found = memo.get(key)
            if found is not None:
                if isinstance(found, Drop):
                    return found
                edit, after = found
                return (*apply_edit(edit, name, pairs), after)
        builder = LabelBuilder(())
        if not names or names[0] > "__name__":
            builder.values["__name__"] = name
            builder.values.update(pairs)
        else:
            builder.values = dict(sorted([("__name__", name), *pairs]))
        result = self._run(builder, names, None, check_all=False)
        out: Relabeled | Drop = result if isinstance(result, Drop) else _split(result, pairs)
        if memo is not None:
            memo.remember(key, name, pairs, out, builder.added)
        return out

    def _run(
        self,
        builder: LabelBuilder,
        original: tuple[str, ...],
        trace: list[Step] | None,
        *,
        check_all: bool,
    ) -> LabelPairs | Drop:
        for rule in self.rules:
            outcome = rule.apply(builder)
            if trace is not None:
                trace.append(Step(rule, outcome, builder.pairs()))
            if outcome == "dropped":
                return Drop("dropped_by_rule", f"dropped by {rule.describe()}")
        values = builder.values
        # Only names the rules set can be scratch labels (`__tmp...`) to remove.
        for name in [n for n in builder.added if n.startswith("__") and n != "__name__"]:
            if name in values and name not in original:
                del values[name]
        metric_name = values.get("__name__", "")
        if not is_metric_name(metric_name):
            return Drop("invalid_metric_name", f"invalid metric name {metric_name!r}")
        # A view's own names are valid: then only names the rules set need a check.
        for name in values if check_all else builder.added & values.keys():
            if not is_label_name(name):
                return Drop("invalid_label_name", f"invalid label name {name!r}")
        return tuple(sorted(values.items()))


_MEMO_SIZE: Final = 50_000
_UNSET: Final = object()
_T = TypeVar("_T")


def _split(labels: LabelPairs, pairs: LabelPairs) -> Relabeled:
    """`labels` as (`__name__`, the others, their names), reusing the pair objects of `pairs`
    where equal."""
    known = {pair: pair for pair in pairs}
    name = ""
    others = []
    for pair in labels:
        if pair[0] == "__name__":
            name = pair[1]
        else:
            others.append(known.get(pair, pair))
    return name, tuple(others), tuple([label for label, _ in others])


def _yaml_quote(text: str) -> str:
    """A YAML single-quoted scalar: backslashes stay as written, quotes are doubled."""
    return "'" + text.replace("'", "''") + "'"
