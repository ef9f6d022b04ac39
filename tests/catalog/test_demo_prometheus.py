"""The demo fleet -> metricgate (in process) -> a real Prometheus with the catalog's rules loaded:
every recording rule and every agent/system/business dashboard query returns data.

The `metricgate-health` dashboard is left out: it reads metricgate's own telemetry, not the demo.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from pathlib import Path

import pytest
import requests

from metricgate.catalog import AgentMetrics, build_dashboards, write_rules
from metricgate.catalog.demo import Fleet
from metricgate.catalog.rules import RECORDING_GROUPS
from tests.catalog.conftest import as_plain_promql
from tests.support.demo_gateway import gateway
from tests.support.poll import block_until
from tests.support.prometheus import PrometheusServer, run_prometheus

pytestmark = pytest.mark.integration

DEMO_DASHBOARDS = (
    "metricgate-ai-agents.json",
    "metricgate-system-health.json",
    "metricgate-business.json",
)


def expressions() -> list[str]:
    exprs = [rule.expr for group in RECORDING_GROUPS for rule in group.rules]
    dashboards = build_dashboards()
    assert set(DEMO_DASHBOARDS) < set(dashboards)
    for name in DEMO_DASHBOARDS:
        for panel in dashboards[name]["panels"]:
            exprs += [as_plain_promql(target["expr"]) for target in panel.get("targets", [])]
    return list(dict.fromkeys(exprs))


def load_rules(server: PrometheusServer, rules_dir: Path) -> None:
    """Add the catalog's rule files to the running server's config and reload it."""
    files = write_rules(rules_dir)
    config = server.log_path.parent / "prometheus.yml"
    listed = "".join(f"  - {path}\n" for path in files)
    config.write_text(config.read_text() + f"rule_files:\n{listed}")
    response = requests.post(f"{server.url}/-/reload", timeout=10)
    assert response.status_code == 200, response.text


def record_until(stop: threading.Event, target: str) -> None:
    metrics = AgentMetrics(endpoint=f"http://{target}", export_interval=3600)
    fleet = Fleet(metrics, agents=10, seed=11)
    try:
        while not stop.is_set():
            fleet.tick()
            metrics.force_flush()
            stop.wait(0.5)
    finally:
        metrics.shutdown()


async def test_every_rule_and_dashboard_query_returns_data(tmp_path: Path) -> None:
    exprs = expressions()
    async with gateway() as gw:
        with contextlib.ExitStack() as stack:
            server = await asyncio.to_thread(
                stack.enter_context, run_prometheus(tmp_path, [gw.scrape_target], "1s")
            )
            await asyncio.to_thread(load_rules, server, tmp_path / "rules")
            stop = threading.Event()
            recorder = asyncio.create_task(asyncio.to_thread(record_until, stop, gw.grpc))
            try:
                empty = await asyncio.to_thread(wait_for_all, server, exprs, 45.0)
            finally:
                stop.set()
                await recorder
                await asyncio.to_thread(stack.close)
    assert empty == [], "no data for:\n" + "\n".join(empty)


def wait_for_all(server: PrometheusServer, exprs: list[str], timeout: float) -> list[str]:
    """Poll until every expression returns at least one sample; the ones that never did."""
    pending = list(exprs)

    def answered() -> bool:
        pending[:] = [expr for expr in pending if not server.query(expr)]
        return not pending

    with contextlib.suppress(AssertionError):  # the caller lists what never answered
        block_until(answered, timeout, interval=0.5)
    return pending
