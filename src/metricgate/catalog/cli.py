"""`metricgate catalog rules|dashboards` and `metricgate demo`: the catalog's command line.

Invariant: the catalog commands only write files under `--out`, and call a backend's API only
with `--push`; they start nothing and read no config.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from metricgate.catalog.rules import DEFAULT_RUNBOOK_BASE_URL

__all__ = ["add_catalog_commands", "add_demo_command"]


def add_catalog_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `catalog rules` and `catalog dashboards` on the `metricgate` command."""
    catalog = subparsers.add_parser(
        "catalog",
        help="generate Prometheus rules and Grafana, Datadog or CloudWatch dashboards for the "
        "agent catalog",
    )
    commands = catalog.add_subparsers(dest="catalog_command", metavar="{rules,dashboards}")
    catalog.set_defaults(func=lambda _: _help(catalog))

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
        "dashboards",
        help="write (or push) the catalog's dashboards for Grafana, Datadog or CloudWatch",
    )
    dashboards.add_argument(
        "--format",
        choices=("grafana", "datadog", "cloudwatch"),
        default="grafana",
        help="grafana: dashboards and provisioning files; datadog: Dashboard JSON for the "
        "datadog exporter's metrics; cloudwatch: dashboard bodies for the cloudwatch "
        "exporter's metrics (default: grafana)",
    )
    dashboards.add_argument("--out", type=Path, help="directory to write into")
    dashboards.add_argument(
        "--push",
        action="store_true",
        help="datadog: create or update them (DD_API_KEY and DD_APP_KEY from the environment); "
        "cloudwatch: PutDashboard them (AWS credentials the usual way)",
    )
    grafana = dashboards.add_argument_group("grafana")
    grafana.add_argument(
        "--prometheus-url",
        default="http://localhost:9090",
        help="URL of the provisioned Prometheus datasource (default: http://localhost:9090)",
    )
    grafana.add_argument(
        "--dashboards-path",
        default="/var/lib/grafana/dashboards/metricgate",
        help="where Grafana sees OUT/dashboards (default: /var/lib/grafana/dashboards/metricgate)",
    )
    datadog = dashboards.add_argument_group("datadog")
    datadog.add_argument(
        "--datadog-site", default="datadoghq.com", help="Datadog site (default: datadoghq.com)"
    )
    datadog.add_argument(
        "--datadog-api-url", default="", help="API base URL; overrides --datadog-site"
    )
    cloudwatch = dashboards.add_argument_group("cloudwatch")
    cloudwatch.add_argument(
        "--namespace", default="", help="the cloudwatch exporter's namespace (required)"
    )
    cloudwatch.add_argument(
        "--region",
        default="",
        help="region the widgets show (default: AWS_REGION, AWS_DEFAULT_REGION, else us-east-1)",
    )
    cloudwatch.add_argument("--endpoint", default="", help="CloudWatch endpoint override")
    dashboards.set_defaults(func=cmd_dashboards)


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def cmd_rules(args: argparse.Namespace) -> int:
    from metricgate.catalog.rules import write_rules

    return _report(write_rules(args.out, runbook_base_url=args.runbook_base_url))


def cmd_dashboards(args: argparse.Namespace) -> int:
    if args.out is None and not args.push:
        return _fail("give --out DIR, or --push (datadog, cloudwatch)")
    if args.format == "grafana":
        if args.push:
            return _fail(
                "--push works with --format datadog or cloudwatch; Grafana reads "
                "provisioned files: use --out"
            )
        from metricgate.catalog.dashboards import write_dashboards

        written = write_dashboards(
            args.out, prometheus_url=args.prometheus_url, dashboards_path=args.dashboards_path
        )
        return _report(written)
    documents: dict[str, dict[str, Any]]
    if args.format == "datadog":
        from metricgate.catalog.datadog_dashboards import build_datadog_dashboards

        documents = build_datadog_dashboards()
    else:
        if not args.namespace:
            return _fail("--format cloudwatch needs --namespace (the cloudwatch exporter's)")
        from metricgate.catalog.cloudwatch_dashboards import build_cloudwatch_dashboards

        documents = build_cloudwatch_dashboards(args.namespace, _region(args.region))
    written = []
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        for name, document in documents.items():
            path = args.out / f"{name}.json"
            path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
            written.append(path)
    _report(written)
    if args.push:
        try:
            lines = _push(args, documents)
        except RuntimeError as exc:
            return _fail(str(exc))
        for line in lines:
            print(line)
    return 0


def _push(args: argparse.Namespace, documents: dict[str, dict[str, Any]]) -> list[str]:
    if args.format == "datadog":
        from metricgate.catalog.datadog_dashboards import push_datadog_dashboards

        api_key = os.environ.get("DD_API_KEY", "")
        app_key = os.environ.get("DD_APP_KEY") or os.environ.get("DD_APPLICATION_KEY", "")
        if not api_key or not app_key:
            raise RuntimeError("--push to Datadog needs DD_API_KEY and DD_APP_KEY set")
        url = args.datadog_api_url or f"https://api.{args.datadog_site}"
        return push_datadog_dashboards(documents, url, api_key, app_key)
    from metricgate.catalog.cloudwatch_dashboards import push_cloudwatch_dashboards

    return push_cloudwatch_dashboards(documents, _region(args.region), args.endpoint)


def _region(region: str) -> str:
    return (
        region
        or os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION")
        or "us-east-1"
    )


def _fail(message: str) -> int:
    print(f"metricgate catalog dashboards: {message}", file=sys.stderr)
    return 2


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
