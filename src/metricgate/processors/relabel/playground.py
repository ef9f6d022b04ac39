"""The operator console's relabel playground: `metricgate relabel-test` in the browser.

`GET /api/console/relabel` lists the gateway's relabel processors with their rules (as YAML, to
copy into the editor). `POST /api/console/relabel` with `{"series": "<lines>", "rules": "<YAML>"}`
or `{"series": ..., "processor": "relabel/x"}` runs the rules on each series line and answers,
per series, every rule's outcome and labels after it, the verdict and the CLI's text: exactly
`metricgate relabel-test`, through `explain`.

The playground evaluates rules; it needs no running processor, so the code that assembles the
gateway installs it (`install`, from `metricgate run`) with the configured rules, and a gateway
without a relabel processor still has one for pasted rules.

Invariant: bad input is a ConfigError naming the body key (`series[2]`, `rules.relabel_configs[0]
.regex`, `processor`), answered 400; inputs are bounded (`MAX_SERIES` lines, `MAX_RULES_BYTES`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import yaml

from metricgate.errors import ConfigError
from metricgate.processors.relabel.config import RelabelConfig
from metricgate.processors.relabel.explain import (
    parse_series_text,
    relabel_processors,
    render_json,
    rules_from_yaml,
    trace,
)
from metricgate.relabel import LabelPairs, RuleSet
from metricgate.telemetry.console import ConsolePanel

if TYPE_CHECKING:
    from metricgate.config import Config
    from metricgate.pipeline.host import Host

PANEL = "relabel"
MAX_SERIES = 1000
MAX_RULES_BYTES = 256 * 1024


class RelabelPlayground:
    """Runs pasted or configured relabel rules on pasted series (see the module docstring)."""

    def __init__(self, processors: Mapping[str, RelabelConfig]) -> None:
        self.processors = dict(processors)
        self._rules = {pid: RuleSet(config.rules) for pid, config in self.processors.items()}

    def read(self, query: Mapping[str, str]) -> dict[str, Any]:
        return {
            "processors": [
                {"id": pid, "rules": _rules_yaml(config)}
                for pid, config in sorted(self.processors.items())
            ]
        }

    def act(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ConfigError("(body): expected a JSON object with series and rules or processor")
        rules, source = self._pick_rules(body)
        results = [render_json(trace(rules, labels)) for labels in _series(body.get("series"))]
        return {"source": source, "results": results}

    def _pick_rules(self, body: dict[str, Any]) -> tuple[RuleSet, str]:
        processor, text = body.get("processor"), body.get("rules")
        if processor:
            found = self._rules.get(str(processor))
            if found is None:
                known = ", ".join(sorted(self._rules)) or "none"
                raise ConfigError(
                    f"processor: no relabel processor {processor!r} in this gateway "
                    f"(found: {known})"
                )
            return found, str(processor)
        if not isinstance(text, str) or not text.strip():
            raise ConfigError("rules: expected relabel rules as YAML text, or give processor")
        if len(text.encode()) > MAX_RULES_BYTES:
            raise ConfigError(f"rules: longer than {MAX_RULES_BYTES} bytes")
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise ConfigError(
                f"rules: invalid YAML{where}: {getattr(exc, 'problem', None) or exc}"
            ) from exc
        return RuleSet(rules_from_yaml(raw, "rules").rules), "rules"


def install(host: Host, config: Config) -> None:
    """Put the playground, with `config`'s relabel processors to pick from, in the console."""
    playground = RelabelPlayground(relabel_processors(config))
    host.add_console_panel(
        PANEL, ConsolePanel("Relabel playground", playground.read, playground.act)
    )


def _series(value: Any) -> list[LabelPairs]:
    lines = value.splitlines() if isinstance(value, str) else value
    if not isinstance(lines, list) or not all(isinstance(line, str) for line in lines):
        raise ConfigError('series: expected lines like name{label="value"}')
    numbered = [(n, line.strip()) for n, line in enumerate(lines, 1) if line.strip()]
    if not numbered:
        raise ConfigError('series: expected at least one line like name{label="value"}')
    if len(numbered) > MAX_SERIES:
        raise ConfigError(f"series: at most {MAX_SERIES} lines, got {len(numbered)}")
    parsed = []
    for number, line in numbered:
        try:
            parsed.append(parse_series_text(line))
        except ValueError as exc:
            raise ConfigError(f"series line {number}: {exc}") from exc
    return parsed


def _rules_yaml(config: RelabelConfig) -> str:
    rules = [
        rule.model_dump(mode="json", by_alias=True, exclude_defaults=True) for rule in config.rules
    ]
    return yaml.safe_dump(rules, sort_keys=False, allow_unicode=True, width=1000)
