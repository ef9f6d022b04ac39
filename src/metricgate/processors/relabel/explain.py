"""What `metricgate relabel-test` and the console's relabel playground share: rules from YAML,
series from text, and the rule-by-rule trace of one series.

Rules come as a plain list (as in a Prometheus scrape config) or a mapping with
`relabel_configs` (or `metric_relabel_configs`), or from a relabel processor of a gateway config.
A series is written as the Prometheus exporter shows it, `name{job="api",code="200"}`, which is
exactly what the rules see.

Invariant: both front ends show the same trace of the same engine (`RuleSet.apply` with a step
list): the CLI prints `trace_text`, the console `render_json`, both from one `Trace`.
This module only uses the engine's public names, so it survives changes of its internals.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from metricgate.config.errors import format_validation_error
from metricgate.errors import ConfigError
from metricgate.processors.relabel.config import RelabelConfig
from metricgate.relabel import Drop, LabelPairs, RuleSet, Step, parse_series

if TYPE_CHECKING:
    from metricgate.config import Config


@dataclass(frozen=True)
class Trace:
    """One series through a rule set: the input, every rule's step, and the verdict."""

    labels: LabelPairs
    steps: tuple[Step, ...]
    result: LabelPairs | Drop


def rules_from_yaml(raw: Any, where: str = "") -> RelabelConfig:
    """The rules in an already-parsed YAML document: a list of rules, or a mapping with
    `relabel_configs`. Problems are a ConfigError with key paths under `where`."""
    body = {"relabel_configs": raw} if isinstance(raw, list) else raw
    if body is not None and not isinstance(body, dict):
        raise ConfigError(
            f"{where or '(top level)'}: expected a list of relabel rules or a mapping with "
            f"relabel_configs, got {type(raw).__name__}"
        )
    try:
        return RelabelConfig.model_validate(body or {})
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, where, RelabelConfig)) from exc


def relabel_processors(config: Config) -> dict[str, RelabelConfig]:
    """The relabel processors of a gateway config, by id."""
    return {
        pid: spec.config
        for pid, spec in config.processors.items()
        if spec.factory.type == "relabel" and isinstance(spec.config, RelabelConfig)
    }


def parse_series_text(text: str) -> LabelPairs:
    """`name{a="b"}` as sorted label pairs; SelectorError (a ValueError) when malformed."""
    return tuple(sorted(parse_series(text).items()))


def trace(rules: RuleSet, labels: LabelPairs) -> Trace:
    """Run `rules` on one series, keeping every step."""
    steps: list[Step] = []
    result = rules.apply(labels, steps)
    return Trace(labels, tuple(steps), result)


def trace_text(rules: RuleSet, labels: LabelPairs) -> str:
    """The step-by-step report for one series, as `metricgate relabel-test` prints it."""
    return render_text(trace(rules, labels))


def render_text(found: Trace) -> str:
    """A trace as the lines `metricgate relabel-test` prints."""
    lines = [f"input:   {format_series(found.labels)}"]
    for number, step in enumerate(found.steps, 1):
        note = {"skipped": "  (if: did not match; skipped)", "dropped": "  => dropped"}
        lines.append(f"rule {number}: {step.rule.describe()}{note.get(step.outcome, '')}")
        if step.outcome == "applied":
            lines.append(f"    -> {format_series(step.labels)}")
    if isinstance(found.result, Drop):
        lines.append(f"result:  dropped ({found.result.reason}): {found.result.detail}")
    else:
        lines.append(f"result:  {format_series(found.result)}")
    return "\n".join(lines)


def render_json(found: Trace) -> dict[str, Any]:
    """A trace as data: each rule's outcome and the labels after it, whether it changed
    anything, the verdict, and the CLI's text."""
    steps = []
    before = found.labels
    for number, step in enumerate(found.steps, 1):
        steps.append(
            {
                "rule": number,
                "description": step.rule.describe(),
                "outcome": step.outcome,
                "changed": step.outcome == "applied" and step.labels != before,
                "labels": format_series(step.labels),
            }
        )
        if step.outcome == "applied":
            before = step.labels
    result = found.result
    return {
        "input": format_series(found.labels),
        "steps": steps,
        "result": None if isinstance(result, Drop) else format_series(result),
        "dropped": (
            {"reason": result.reason, "detail": result.detail} if isinstance(result, Drop) else None
        ),
        "text": render_text(found),
    }


def format_series(labels: LabelPairs) -> str:
    """A label set as `name{a="b",...}`, labels sorted, values quoted as in PromQL."""
    values = dict(labels)
    name = values.pop("__name__", "")
    pairs = ",".join(f"{k}={_quote(v)}" for k, v in sorted(values.items()))
    return f"{name}{{{pairs}}}"


def _quote(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'
