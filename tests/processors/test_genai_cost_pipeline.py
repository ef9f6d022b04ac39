"""genai_cost end to end: the OpenTelemetry SDK -> metricgate (in process) -> scrape page."""

from __future__ import annotations

import asyncio
import time

import pytest
import requests
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from prometheus_client.parser import text_string_to_metric_families

from metricgate.catalog import AgentMetrics
from metricgate.config import load_config_text
from metricgate.exporters.prometheus import PrometheusExporter
from metricgate.pipeline.service import Service
from metricgate.receivers.otlp import OtlpReceiver
from tests.support.capture import registry_with_capture

CONFIG = """
receivers:
  otlp:
    protocols:
      grpc: {endpoint: "127.0.0.1:0"}
processors:
  genai_cost:
    default_models: {openai: gpt-4o}
exporters:
  prometheus: {endpoint: "127.0.0.1:0"}
service:
  pipelines:
    metrics: {receivers: [otlp], processors: [genai_cost], exporters: [prometheus]}
  telemetry:
    metrics: {address: ""}
"""


def scrape(port: int | None) -> dict[tuple[tuple[str, str], ...], float]:
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "agent_cost_total"
    }


def record(target: str) -> None:
    agent = AgentMetrics(endpoint=f"http://{target}", export_interval=3600)
    for input_tokens, output_tokens in ((1_000_000, 100_000), (1_000_000, 0)):
        agent.record_tokens(
            agent_id="a-1",
            agent_type="planner",
            provider="openai",
            input_tokens=input_tokens,
            output_tokens=output_tokens,
        )
        assert agent.force_flush()
    assert agent.force_flush()
    agent.shutdown()

    exporter = OTLPMetricExporter(endpoint=f"http://{target}", insecure=True)
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(
        metric_readers=[reader],
        resource=Resource.create({"service.name": "chatbot", "service.instance.id": "c-1"}),
    )
    usage = provider.get_meter("genai").create_histogram("gen_ai.client.token.usage", "{token}")
    model = {"gen_ai.provider.name": "anthropic", "gen_ai.request.model": "claude-sonnet-4"}
    usage.record(1000, {**model, "gen_ai.token.type": "input"})
    usage.record(200, {**model, "gen_ai.token.type": "output"})
    provider.shutdown()


async def test_sdk_token_metrics_become_exact_cost_on_the_scrape_page() -> None:
    service = Service(load_config_text(CONFIG, registry_with_capture(), {}))
    await service.start()
    try:
        receiver = service.receivers["otlp"]
        exporter = service.exporter_queues["prometheus"].exporter
        assert isinstance(receiver, OtlpReceiver) and isinstance(exporter, PrometheusExporter)
        await asyncio.to_thread(record, f"127.0.0.1:{receiver.grpc_port}")
        costs = await asyncio.to_thread(scrape, exporter.port)
    finally:
        await service.shutdown(time.monotonic() + 5)
    by_agent = {
        dict(labels)["agent_type"]: (dict(labels), value) for labels, value in costs.items()
    }
    assert set(by_agent) == {"planner", "chatbot"}
    labels, value = by_agent["planner"]
    assert value == pytest.approx(2 * 2.50 + 0.1 * 10.00)  # gpt-4o: $2.50 in, $10 out per 1M
    assert labels["otel_scope_name"] == "metricgate.genai_cost"
    assert (labels["job"], labels["provider"]) == ("ai-agent", "openai")
    labels, value = by_agent["chatbot"]
    assert value == pytest.approx(1000 * 3e-6 + 200 * 15e-6)  # claude-sonnet-4: $3 / $15
    assert (labels["agent_id"], labels["provider"]) == ("c-1", "anthropic")
