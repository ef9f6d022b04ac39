"""`metricgate catalog rules|dashboards --out DIR`: write the catalog's generated files.

Invariant: the commands only write files under `--out`; they start nothing and read no config.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from metricgate.catalog.rules import DEFAULT_RUNBOOK_BASE_URL

__all__ = ["add_catalog_commands", "add_demo_command"]


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
    from metricgate.catalog.dashboards import write_dashboards

    written = write_dashboards(
        args.out, prometheus_url=args.prometheus_url, dashboards_path=args.dashboards_path
    )
    return _report(written)


def _report(paths: list[Path]) -> int:
    for path in paths:
        print(path)
    return 0


def add_demo_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `demo`: a simulated agent fleet recording the catalog into a running metricgate."""
    demo = subparsers.add_parser(
        "demo",
        help="send a simulated AI-agent fleet's metrics to a running metricgate",
        description="Record every catalog metric from simulated agents through the OpenTelemetry "
        "SDK into metricgate's OTLP receiver; open the scrape page or dashboards to watch.",
    )
    demo.add_argument(
        "--endpoint",
        default=None,
        help="OTLP receiver host:port (default: localhost:4317 for grpc, localhost:4318 for http)",
    )
    demo.add_argument("--protocol", choices=("grpc", "http"), default="grpc")
    demo.add_argument(
        "--duration",
        type=_duration,
        default=0.0,
        help="how long to run, e.g. 5m (default: 0 = until Ctrl-C)",
    )
    demo.add_argument(
        "--interval", type=_duration, default=1.0, help="time between ticks and exports (1s)"
    )
    demo.add_argument("--agents", type=int, default=12, help="simulated agents (default: 12)")
    demo.add_argument("--seed", type=int, default=1, help="random seed (default: 1)")
    demo.add_argument(
        "--cost-by-gateway",
        action="store_true",
        help="record no agent cost: leave it to a genai_cost processor in metricgate",
    )
    demo.set_defaults(func=cmd_demo)


def _duration(text: str) -> float:
    from metricgate.config.types import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def cmd_demo(args: argparse.Namespace) -> int:
    from metricgate.catalog.demo import run_demo
    from metricgate.catalog.probe import probe_otlp

    if args.agents < 1 or args.interval <= 0:
        print("metricgate demo: --agents must be >= 1 and --interval > 0", file=sys.stderr)
        return 2
    endpoint = args.endpoint or ("localhost:4317" if args.protocol == "grpc" else "localhost:4318")
    problem = probe_otlp(endpoint, args.protocol)
    if problem is not None:
        print(
            f"metricgate demo: {problem}; start one with `metricgate run`, "
            "or point --endpoint (and --protocol) at one",
            file=sys.stderr,
        )
        return 1
    run_demo(
        endpoint=endpoint,
        protocol=args.protocol,
        duration=args.duration,
        interval=args.interval,
        agents=args.agents,
        seed=args.seed,
        cost_by_gateway=args.cost_by_gateway,
    )
    return 0
