"""`metricgate demo`: determinism, every catalog metric on a real scrape page, the CLI command."""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import threading
import time
from typing import Any

import pytest
import requests
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from prometheus_client.parser import text_string_to_metric_families

from metricgate.catalog import CATALOG, AgentMetrics, MetricKind, MetricSpec
from metricgate.catalog.cli import add_demo_command
from metricgate.catalog.demo import Fleet, run_demo
from metricgate.catalog.probe import probe_otlp
from tests.support.demo_gateway import CONFIG, gateway


def recorded(seed: int, ticks: int = 4) -> list[tuple[Any, ...]]:
    """Every data point a fleet records in `ticks` ticks, without timestamps."""
    reader = InMemoryMetricReader()
    fleet = Fleet(AgentMetrics(reader=reader), agents=7, seed=seed)
    for _ in range(ticks):
        fleet.tick()
    data = reader.get_metrics_data()
    assert data is not None
    out = []
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                for point in metric.data.data_points:
                    value = getattr(point, "value", None)
                    if value is None:
                        value = (point.count, point.sum, tuple(point.bucket_counts))  # type: ignore[union-attr]
                    attributes = tuple(sorted((point.attributes or {}).items()))
                    out.append((metric.name, attributes, value))
    return sorted(out, key=repr)


def test_the_same_seed_records_the_same_values() -> None:
    first = recorded(seed=7)
    assert first == recorded(seed=7)
    assert first != recorded(seed=8)
    assert {name for name, *_ in first} == {spec.otlp_name for spec in CATALOG}


def test_an_incident_raises_the_error_rate_of_one_provider() -> None:
    fleet = Fleet(AgentMetrics(reader=InMemoryMetricReader()), agents=5, seed=1)
    seen = set()
    for _ in range(400):
        fleet.tick()
        seen.add(fleet.incident_provider())
    assert {"openai", "anthropic", "google", None} <= seen


def expected_sample(spec: MetricSpec) -> str:
    return spec.prometheus_name + ("_bucket" if spec.kind is MetricKind.HISTOGRAM else "")


async def test_every_catalog_metric_reaches_the_scrape_page_with_its_labels() -> None:
    async with gateway() as gw:

        def record() -> None:
            metrics = AgentMetrics(endpoint=f"http://{gw.grpc}", export_interval=3600)
            fleet = Fleet(metrics, agents=10, seed=3)
            for _ in range(5):
                fleet.tick()
                assert metrics.force_flush()
            metrics.shutdown()

        await asyncio.to_thread(record)
        samples = await asyncio.to_thread(gw.scrape)
    for spec in CATALOG:
        name = expected_sample(spec)
        assert name in samples, f"{name} missing from the scrape page"
        for labels in samples[name]:
            assert set(spec.labels) <= set(labels), f"{name}: {labels}"
    providers = {labels["provider"] for labels in samples["agent_cost_total"]}
    assert providers == {"openai", "anthropic", "google"}
    statuses = {labels["status"] for labels in samples["agent_operations_total"]}
    assert {"success", "error"} <= statuses
    codes = {labels["status_code"] for labels in samples["http_requests_total"]}
    assert {"200", "201", "500"} <= codes


async def test_demo_command_runs_for_its_duration_over_http() -> None:
    parser = argparse.ArgumentParser()
    add_demo_command(parser.add_subparsers(dest="command"))
    async with gateway() as gw:
        args = parser.parse_args(
            [
                *("demo", "--protocol", "http", "--endpoint", gw.http, "--duration", "600ms"),
                *("--interval", "200ms", "--agents", "3", "--seed", "5"),
            ]
        )
        assert (args.duration, args.interval) == (0.6, 0.2)
        started = time.monotonic()
        assert await asyncio.to_thread(args.func, args) == 0
        assert time.monotonic() - started < 10
        samples = await asyncio.to_thread(gw.scrape)
    assert "agent_operations_total" in samples
    assert {labels["job"] for labels in samples["agent_operations_total"]} == {"metricgate-demo"}


async def test_run_demo_stops_when_asked() -> None:
    async with gateway() as gw:
        stop = threading.Event()
        lines: list[str] = []
        task = asyncio.create_task(
            asyncio.to_thread(
                run_demo, endpoint=gw.grpc, interval=0.05, agents=2, stop=stop, report=lines.append
            )
        )
        await asyncio.sleep(0.3)  # the demo runs a few 0.05 s ticks; what is tested is the stop
        stop.set()
        fleet = await asyncio.wait_for(task, 10)
    assert fleet.tick_number >= 2
    assert lines[0].startswith("demo: 2 agents -> ")


def test_bad_arguments_are_refused() -> None:
    parser = argparse.ArgumentParser()
    add_demo_command(parser.add_subparsers(dest="command"))
    with pytest.raises(SystemExit):
        parser.parse_args(["demo", "--duration", "soon"])
    with pytest.raises(ValueError, match="agents"):
        Fleet(AgentMetrics(reader=InMemoryMetricReader()), agents=0)


async def test_cost_by_gateway_is_priced_exactly_by_genai_cost() -> None:
    config = CONFIG.replace(
        "exporters: [prometheus]", "processors: [genai_cost], exporters: [prometheus]"
    )
    config += "processors: {genai_cost: {}}\n"
    async with gateway(config) as gw:
        fleet = await asyncio.to_thread(
            run_demo,
            endpoint=gw.grpc,
            interval=0.1,
            duration=0.5,
            agents=5,
            cost_by_gateway=True,
            report=lambda _: None,
        )
        text = await asyncio.to_thread(
            requests.get, f"http://{gw.scrape_target}/metrics", timeout=10
        )
        unknown = gw.service.telemetry.registry.get_sample_value(
            "metricgate_genai_cost_unknown_model_points_total"
        )
    costs = [
        sample
        for family in text_string_to_metric_families(text.text)
        for sample in family.samples
        if sample.name == "agent_cost_total"
    ]
    assert fleet.usd > 0 and unknown is None
    assert {s.labels["otel_scope_name"] for s in costs} == {"metricgate.genai_cost"}
    assert {s.labels["instance"] for s in costs} == {
        f"demo-1-{agent.model}" for agent in fleet.agents
    }
    assert sum(s.value for s in costs) == pytest.approx(fleet.usd, rel=1e-9)


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_demo_without_a_gateway_says_so_and_fails(protocol: str) -> None:
    # Port 1 is closed: the command must not spend the SDK's retries on it and exit 0.
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "metricgate",
            "demo",
            "--endpoint",
            "127.0.0.1:1",
            "--protocol",
            protocol,
            "--duration",
            "30s",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("metricgate demo: no gateway answers at "), result.stderr
    assert "start one with `metricgate run`" in result.stderr
    assert "Traceback" not in result.stderr and "Transient error" not in result.stderr


async def test_demo_refuses_an_address_that_is_not_an_otlp_receiver() -> None:
    async with gateway() as gw:
        # The scrape page answers HTTP, but 405/404 to an OTLP POST.
        problem = await asyncio.to_thread(probe_otlp, gw.scrape_target, "http")
        assert problem is not None and "answers, but not as an OTLP metrics receiver" in problem
        assert await asyncio.to_thread(probe_otlp, gw.http, "http") is None
        assert await asyncio.to_thread(probe_otlp, gw.grpc, "grpc") is None
