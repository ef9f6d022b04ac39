"""`metricgate catalog dashboards --format datadog|cloudwatch [--push]`.

The documents are checked by the backends' own rules (datadog-api-client's `Dashboard` model,
moto's PutDashboard), and their queries against what the datadog and cloudwatch exporters really
send when the demo fleet records the catalog through a running gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import boto3

from metricgate.catalog import AgentMetrics
from metricgate.catalog.charts import BOARDS
from metricgate.catalog.cloudwatch_dashboards import build_cloudwatch_dashboards, chart_expression
from metricgate.catalog.datadog_dashboards import build_datadog_dashboards, chart_query
from metricgate.catalog.demo import Fleet
from metricgate.config import load_config_text
from metricgate.pipeline.service import Service
from metricgate.receivers.otlp import OtlpReceiver
from tests.support.aws import DUMMY_CREDENTIALS
from tests.support.capture import registry_with_capture
from tests.support.cli import metricgate
from tests.support.datadog_api import API_KEY, APP_KEY, parse_dashboard, running_dashboard_api
from tests.support.datadog_intake import API_KEY as INTAKE_KEY
from tests.support.datadog_intake import Intake, running_intake
from tests.support.poll import wait_until

NAMESPACE = "AgentsTest"


# --- the documents -----------------------------------------------------------------------------


def test_datadog_documents_are_valid_dashboards(tmp_path: Path) -> None:
    result = metricgate("catalog", "dashboards", "--format", "datadog", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    files = sorted(tmp_path.glob("*.json"))
    assert [f.name for f in files] == [
        "ai-agent-overview.json",
        "business-kpis.json",
        "system-health.json",
    ]
    for path in files:
        dashboard = parse_dashboard(json.loads(path.read_text()))
        assert dashboard.title.endswith(" (metricgate)")
        assert len(dashboard.widgets) >= 8
    overview = json.loads((tmp_path / "ai-agent-overview.json").read_text())
    assert [v["name"] for v in overview["template_variables"]] == ["agent_type", "provider"]


def test_cloudwatch_needs_the_exporter_namespace(tmp_path: Path) -> None:
    result = metricgate("catalog", "dashboards", "--format", "cloudwatch", "--out", str(tmp_path))
    assert result.returncode == 2
    assert "--namespace" in result.stderr


def test_push_is_for_datadog_and_cloudwatch_only() -> None:
    result = metricgate("catalog", "dashboards", "--push")
    assert result.returncode == 2
    assert "--push works with --format datadog or cloudwatch" in result.stderr


# --- the queries against what the exporters send -------------------------------------------------

GATEWAY = """
receivers:
  otlp: {{protocols: {{grpc: {{endpoint: "127.0.0.1:0"}}}}}}
exporters:
  datadog: {{api: {{key: "{key}"}}, endpoint: "{intake}", hostname: demo-host}}
  cloudwatch: {{namespace: {namespace}, region: us-east-1, endpoint: "{moto}",
               disable_request_compression: true}}
service:
  pipelines:
    metrics: {{receivers: [otlp], exporters: [datadog, cloudwatch]}}
  telemetry: {{metrics: {{address: ""}}}}
"""


@asynccontextmanager
async def gateway(intake: Intake, moto_url: str) -> AsyncIterator[str]:
    text = GATEWAY.format(key=INTAKE_KEY, intake=intake.url, namespace=NAMESPACE, moto=moto_url)
    service = Service(load_config_text(text, registry_with_capture(), {}))
    await service.start()
    try:
        receiver = service.receivers["otlp"]
        assert isinstance(receiver, OtlpReceiver)
        yield f"127.0.0.1:{receiver.grpc_port}"
    finally:
        await service.shutdown(time.monotonic() + 10)


def record_fleet(endpoint: str) -> None:
    metrics = AgentMetrics(endpoint=endpoint, protocol="grpc", export_interval=60)
    fleet = Fleet(metrics, agents=12, seed=3)
    for _ in range(3):
        fleet.tick()
    metrics.shutdown()  # exports once, now


_QUERY = re.compile(r"(\w+):([\w.]+)\{([^}]*)\}(?: by \{([^}]*)\})?")


def datadog_references() -> set[tuple[str, frozenset[str]]]:
    """(metric, tag keys it is filtered or split by) for every query of every dashboard."""
    found = set()
    for board in BOARDS:
        for chart in board.charts:
            for _, name, scope, by in _QUERY.findall(chart_query(chart, board)):
                keys = {part.lstrip("!$").split(":")[0] for part in scope.split(",")} - {"*"}
                found.add((name, frozenset(keys | set(filter(None, by.split(","))))))
    return found


async def test_queries_name_what_the_exporters_send(
    moto_url: str, dummy_credentials: None, tmp_path: Path
) -> None:
    cloudwatch = boto3.client("cloudwatch", endpoint_url=moto_url, region_name="us-east-1")
    wanted_dd = datadog_references()
    wanted_cw = {(c.metric.otlp_name, frozenset(c.metric.labels)) for b in BOARDS for c in b.charts}
    async with running_intake() as intake, gateway(intake, moto_url) as endpoint:
        await asyncio.to_thread(record_fleet, endpoint)
        missing: dict[str, set[Any]] = {}

        async def look() -> None:
            sent: dict[str, set[str]] = {}
            for series in intake.series:
                keys = {tag.split(":", 1)[0] for tag in series.get("tags", [])}
                sent.setdefault(series["metric"], set()).update(keys)
            listed = await asyncio.to_thread(
                lambda: cloudwatch.list_metrics(Namespace=NAMESPACE)["Metrics"]
            )
            written = {
                (m["MetricName"], frozenset(d["Name"] for d in m["Dimensions"])) for m in listed
            }
            missing["datadog"] = {(n, k) for n, k in wanted_dd if n not in sent or not k <= sent[n]}
            missing["cloudwatch"] = wanted_cw - written

        with contextlib.suppress(AssertionError):  # the assertion below says what is missing
            await wait_until(lambda: not any(missing.values()), look, 30, 0.2)
        assert not any(missing.values()), missing
    # The CloudWatch queries select exactly those names and dimension sets.
    for board in BOARDS:
        for chart in board.charts:
            expression = chart_expression(chart, NAMESPACE)
            dimensions = "".join(f', "{label}"' for label in chart.metric.labels)
            schema = f'("{chart.metric.otlp_name}") FROM SCHEMA("{NAMESPACE}"{dimensions})'
            assert schema in expression


# --- pushing -------------------------------------------------------------------------------------


async def test_push_to_datadog_creates_then_updates(tmp_path: Path) -> None:
    env = {"DD_API_KEY": API_KEY, "DD_APP_KEY": APP_KEY}
    async with running_dashboard_api() as api:
        args = ("catalog", "dashboards", "--format", "datadog", "--push")
        first = await asyncio.to_thread(metricgate, *args, "--datadog-api-url", api.url, env=env)
        assert first.returncode == 0, first.stderr
        assert [line.split()[0] for line in first.stdout.splitlines()] == ["created"] * 3
        ids = set(api.dashboards)
        second = await asyncio.to_thread(
            metricgate, *args, "--datadog-api-url", api.url, "--out", str(tmp_path), env=env
        )
        assert second.returncode == 0, second.stderr
        assert [line.split()[0] for line in second.stdout.splitlines()[3:]] == ["updated"] * 3
        assert set(api.dashboards) == ids  # replaced, not duplicated
        assert api.calls[:5] == ["GET", "POST", "POST", "POST", "GET"]
        assert sorted(api.calls[5:]) == sorted(f"PUT {key}" for key in ids)
        assert {d["title"] for d in api.dashboards.values()} == {
            d["title"] for d in build_datadog_dashboards().values()
        }
        wrong = await asyncio.to_thread(
            metricgate, *args, "--datadog-api-url", api.url, env={**env, "DD_APP_KEY": "x"}
        )
        assert wrong.returncode == 2
        assert "HTTP 403" in wrong.stderr


def test_push_to_datadog_needs_both_keys() -> None:
    result = metricgate(
        "catalog",
        "dashboards",
        "--format",
        "datadog",
        "--push",
        env={"DD_API_KEY": "", "DD_APP_KEY": "", "DD_APPLICATION_KEY": ""},
    )
    assert result.returncode == 2
    assert "DD_API_KEY and DD_APP_KEY" in result.stderr


def test_push_to_cloudwatch_puts_what_reads_back(moto_url: str, tmp_path: Path) -> None:
    result = metricgate(
        "catalog",
        "dashboards",
        "--format",
        "cloudwatch",
        "--namespace",
        NAMESPACE,
        "--push",
        "--endpoint",
        moto_url,
        "--out",
        str(tmp_path),
        env=DUMMY_CREDENTIALS,
    )
    assert result.returncode == 0, result.stderr
    client = boto3.client(
        "cloudwatch",
        endpoint_url=moto_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    names = {d["DashboardName"] for d in client.list_dashboards()["DashboardEntries"]}
    expected = build_cloudwatch_dashboards(NAMESPACE, "us-east-1")
    assert set(expected) <= names
    for name, body in expected.items():
        stored = json.loads(client.get_dashboard(DashboardName=name)["DashboardBody"])
        assert stored == body
        assert json.loads((tmp_path / f"{name}.json").read_text()) == body
        metric_widgets = [w for w in body["widgets"] if w["type"] == "metric"]
        assert all(w["properties"]["region"] == "us-east-1" for w in metric_widgets)
