"""`metricgate catalog rules|dashboards --out DIR`: write the catalog's generated files.

Invariant: the commands only write files under `--out`; they start nothing and read no config.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from metricgate.catalog.rules import DEFAULT_RUNBOOK_BASE_URL

__all__ = ["add_catalog_commands"]


def add_catalog_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `catalog rules` and `catalog dashboards` on the `metricgate` command."""
    catalog = subparsers.add_parser(
        "catalog", help="generate Prometheus rules and Grafana dashboards for the agent catalog"
    )
    commands = catalog.add_subparsers(dest="catalog_command", required=True)

    rules = commands.add_parser(
        "rules", help="write agent-recording.rules.yml and agent-alerts.rules.yml"
    )
    rules.add_argument("--out", required=True, type=Path, help="directory to write into")
    rules.add_argument(
        "--runbook-base-url",
        default=DEFAULT_RUNBOOK_BASE_URL,
        help=f"alerts link to <this>/<alert-page> (default: {DEFAULT_RUNBOOK_BASE_URL})",
    )
    rules.set_defaults(func=cmd_rules)

    dashboards = commands.add_parser(
        "dashboards", help="write Grafana dashboards and provisioning files"
    )
    dashboards.add_argument("--out", required=True, type=Path, help="directory to write into")
    dashboards.add_argument(
        "--prometheus-url",
        default="http://localhost:9090",
        help="URL of the provisioned Prometheus datasource (default: http://localhost:9090)",
    )
    dashboards.add_argument(
        "--dashboards-path",
        default="/var/lib/grafana/dashboards/metricgate",
        help="where Grafana sees OUT/dashboards (default: /var/lib/grafana/dashboards/metricgate)",
    )
    dashboards.set_defaults(func=cmd_dashboards)


def cmd_rules(args: argparse.Namespace) -> int:
    from metricgate.catalog.rules import write_rules

    return _report(write_rules(args.out, runbook_base_url=args.runbook_base_url))


def cmd_dashboards(args: argparse.Namespace) -> int:
    try:
        from metricgate.catalog.dashboards import write_dashboards
    except ImportError as exc:
        print(
            f"metricgate catalog dashboards needs grafana-foundation-sdk ({exc}); "
            "install it with: pip install grafana-foundation-sdk",
            file=sys.stderr,
        )
        return 1
    written = write_dashboards(
        args.out, prometheus_url=args.prometheus_url, dashboards_path=args.dashboards_path
    )
    return _report(written)


def _report(paths: list[Path]) -> int:
    for path in paths:
        print(path)
    return 0
