"""cardinality_limit in a running Service: /debug/cardinality names the label that exploded."""

from __future__ import annotations

import asyncio

import aiohttp

from metricgate.config import load_config_text
from metricgate.model import (
    INTERNER,
    AttributeValue,
    Batch,
    MetricPoints,
    Temporality,
    sorted_attributes,
)
from metricgate.pipeline.service import Service
from tests.support.batches import metric
from tests.support.capture import CaptureExporter, InjectReceiver, registry_with_capture
from tests.support.ports import free_port

CONFIG = """
receivers: {{inject: {{}}}}
processors:
  cardinality_limit: {{max_series_per_metric: 100, per_label: {{label: tenant, max_series: 5000}}}}
exporters: {{capture: {{}}}}
service:
  telemetry: {{metrics: {{address: "127.0.0.1:{port}"}}, logs: {{level: warning}}}}
  pipelines:
    metrics: {{receivers: [inject], processors: [cardinality_limit], exporters: [capture]}}
"""


def flood() -> Batch:
    exploding = metric("checkout_requests", temporality=Temporality.DELTA)
    calm = metric("calm_requests", temporality=Temporality.DELTA)
    groups = [MetricPoints(exploding), MetricPoints(calm)]
    for i in range(10_000):
        attributes: dict[str, AttributeValue] = {
            "method": ("GET", "POST")[i % 2],
            "tenant": "acme",
            "user_id": f"u{i}",
        }
        groups[0].append(INTERNER.intern_series(exploding, sorted_attributes(attributes)), 1.0, 1)
    for code in ("200", "404", "500"):
        groups[1].append(INTERNER.intern_series(calm, (("code", code),)), 1.0, 1)
    return Batch(groups)


async def test_debug_page_names_the_exploding_label() -> None:
    port = free_port()
    service = Service(load_config_text(CONFIG.format(port=port), registry_with_capture(), {}))
    await service.start()
    try:
        await InjectReceiver.instances["inject"].push(flood())
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/debug/cardinality?limit=1") as response:
                assert response.status == 200
                body = await response.json()
            async with http.get(f"{base}/debug/cardinality?format=text") as response:
                text = await response.text()
            async with http.get(f"{base}/debug/cardinality?limit=x") as response:
                assert response.status == 400
            async with http.get(f"{base}/metrics") as response:
                exposition = await response.text()
        (limiter,) = body["limiters"]
        assert limiter["active_series"] == 103
        assert limiter["limits"]["per_label"][0]["top_values"] == [{"value": "acme", "series": 100}]
        (top,) = limiter["metrics"]
        assert (top["metric"], top["series"], top["refused_series"]) == (
            "checkout_requests",
            100,
            9_900,
        )
        first, second = top["labels"][:2]
        assert (first["label"], first["distinct_values"]) == ("user_id", 10_000)
        assert (second["label"], second["distinct_values"]) == ("method", 2)
        assert "user_id=10000" in text and "calm_requests" in text
        assert (
            'metricgate_cardinality_refused_series_total{metric="checkout_requests",'
            'processor="cardinality_limit",reason="max_series_per_metric"} 9900.0'
        ) in exposition
        assert 'metricgate_processor_active_series{processor="cardinality_limit"} 103.0' in (
            exposition
        )
        capture = CaptureExporter.instances["capture"]
        await asyncio.wait_for(capture.received.wait(), 5)
        assert capture.points() == 100 + 1 + 3  # admitted, one overflow point, calm metric
    finally:
        await service.shutdown()


async def test_limiters_of_one_gateway_share_the_page_and_the_gauges() -> None:
    config = CONFIG.format(port=0).replace(
        "    metrics: {receivers",
        "    metrics/b: {receivers: [inject], processors: [cardinality_limit], "
        "exporters: [capture]}\n    metrics: {receivers",
    )
    port = free_port()
    config = config.replace("127.0.0.1:0", f"127.0.0.1:{port}")
    service = Service(load_config_text(config, registry_with_capture(), {}))
    await service.start()
    try:
        assert len(service.processors) == 2  # one limiter per pipeline, same id
        await InjectReceiver.instances["inject"].push(flood())
        async with aiohttp.ClientSession() as http:
            url = f"http://127.0.0.1:{port}/debug/cardinality?processor=cardinality_limit"
            async with http.get(url) as response:
                body = await response.json()
        assert [r["active_series"] for r in body["limiters"]] == [103, 103]
        active = service.telemetry.registry.get_sample_value(
            "metricgate_processor_active_series", {"processor": "cardinality_limit"}
        )
        assert active == 206
    finally:
        await service.shutdown()
