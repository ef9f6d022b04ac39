"""`metricgate relabel-test`: run a relabel processor's rules on one series, step by step.

The series is given as the Prometheus exporter would show it (`name{job="api",code="200"}`), which
is exactly what the rules see. `--config` takes a gateway config (the relabel processor is picked
with `--processor` when there are several), a bare `relabel_configs:` mapping, or a plain YAML
list of rules as in a Prometheus config.

Invariant: the command never starts a pipeline; it only validates config and evaluates rules.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from metricgate.config.components import ComponentTypes
from metricgate.errors import ConfigError
from metricgate.processors.relabel.config import RelabelConfig
from metricgate.processors.relabel.explain import (
    relabel_processors,
    rules_from_yaml,
    trace_text,
)
from metricgate.relabel.rules import RuleSet
from metricgate.relabel.selector import SelectorError, parse_series


def add_relabel_test_command(subparsers: Any, registry: Callable[[], ComponentTypes]) -> None:
    """Register `relabel-test` on the `metricgate` command's subparsers; `registry` gives the
    component types a gateway config given to `--config` may use."""
    command = subparsers.add_parser(
        "relabel-test",
        help="show what a relabel processor does to a series, rule by rule",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    command.add_argument("--config", "-c", required=True, help="YAML config file")
    command.add_argument("--processor", help="relabel processor id, e.g. relabel/tenant")
    command.add_argument(
        "--series",
        "-s",
        action="append",
        required=True,
        help='series like \'http_requests_total{job="api",code="200"}\' (repeatable)',
    )
    command.set_defaults(func=run_relabel_test, registry=registry)


def run_relabel_test(args: argparse.Namespace) -> int:
    try:
        config = load_relabel_config(Path(args.config), args.processor, args.registry())
        inputs = [parse_series(text) for text in args.series]
    except ConfigError as exc:
        print(f"metricgate: invalid configuration in {args.config}:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    except SelectorError as exc:
        print(f"metricgate: --series: {exc}", file=sys.stderr)
        return 1
    rules = RuleSet(config.rules)
    for number, labels in enumerate(inputs):
        if number:
            print()
        print(trace_text(rules, tuple(sorted(labels.items()))))
    return 0


def load_relabel_config(
    path: Path, processor: str | None, registry: ComponentTypes
) -> RelabelConfig:
    """The relabel config in `path` (gateway config, relabel mapping or rule list)."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from exc
    if isinstance(raw, dict) and "processors" in raw:
        return _from_gateway_config(path, processor, registry)
    return rules_from_yaml(raw)


def _from_gateway_config(
    path: Path, processor: str | None, registry: ComponentTypes
) -> RelabelConfig:
    from metricgate.config import load_config

    found = relabel_processors(load_config(path, registry))
    if processor is not None:
        if processor not in found:
            known = ", ".join(sorted(found)) or "none"
            raise ConfigError(f"--processor: no relabel processor {processor!r} (found: {known})")
        return found[processor]
    if len(found) != 1:
        known = ", ".join(sorted(found)) or "none"
        raise ConfigError(
            f"processors: expected one relabel processor or --processor (found: {known})"
        )
    return next(iter(found.values()))
