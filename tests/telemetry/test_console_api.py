"""The operator console's JSON API against a running Service fed over OTLP/HTTP.

The graph's edge rates, exporter health and last errors come from real traffic and a real
unreachable backend (then a second gateway coming up there); the config view, the cardinality
explorer, the relabel playground (compared with `metricgate relabel-test`), the reload endpoint
and the admin seam are driven through HTTP like the page does.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)

from metricgate.cli import main
from metricgate.config import Config, load_config_text
from metricgate.errors import UnavailableError
from metricgate.pipeline.reload import Reloader
from metricgate.pipeline.service import Service
from metricgate.processors.relabel import playground
from metricgate.telemetry.console import ConsolePanel
from tests.support.capture import CaptureExporter, registry_with_capture
from tests.support.poll import wait_until
from tests.support.ports import free_port

SECRETS = ("console-secret-token-1", "console-secret-token-2")

CONFIG = """
extensions:
  bearertokenauth/ci: {{token: "console-secret-token-1"}}
receivers:
  otlp: {{protocols: {{http: {{endpoint: "127.0.0.1:{http}"}}}}}}
processors:
  relabel:
    relabel_configs:
      - {{source_labels: [__name__], regex: 'debug_.*', action: drop}}
      - {{source_labels: [route], regex: '/api/(.*)', target_label: endpoint}}
  cardinality_limit: {{max_series_per_metric: 3}}
exporters:
  capture: {{}}
  otlp/next:
    endpoint: "http://127.0.0.1:{next}"
    protocol: http
    headers: {{Authorization: "Bearer console-secret-token-2"}}
    # Given up at once: a batch retrying at shutdown can hang the queue's shutdown on Python
    # 3.11 (asyncio.wait_for swallows the worker's cancellation once `stopping` is set).
    retry_on_failure: {{enabled: false}}
service:
  extensions: [bearertokenauth/ci]
  shutdown_timeout: 1s
  telemetry:
    metrics: {{address: "127.0.0.1:{telemetry}"}}
    logs: {{level: warning}}
  pipelines:
    metrics: {{receivers: [otlp], processors: [relabel, cardinality_limit], exporters: [capture]}}
    metrics/next: {{receivers: [otlp], processors: [relabel], exporters: [otlp/next]}}
"""

NEXT_GATEWAY = """
receivers:
  otlp: {{protocols: {{http: {{endpoint: "127.0.0.1:{port}"}}}}}}
exporters:
  capture/next: {{}}
service:
  telemetry: {{metrics: {{address: ""}}}}
  pipelines:
    metrics: {{receivers: [otlp], exporters: [capture/next]}}
"""


class Gateway:
    """A started Service, its config, and an HTTP session for its ports."""

    def __init__(self, service: Service, config: Config, ports: dict[str, int]) -> None:
        self.service = service
        self.config = config
        self.ports = ports
        self.http = aiohttp.ClientSession()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.ports['telemetry']}{path}"

    async def get(self, path: str) -> tuple[int, Any]:
        async with self.http.get(self.url(path)) as response:
            if response.content_type == "application/json":
                return response.status, await response.json()
            return response.status, await response.text()

    async def post(self, path: str, body: Any = None, **kwargs: Any) -> tuple[int, Any]:
        async with self.http.post(self.url(path), json=body, **kwargs) as response:
            if response.content_type == "application/json":
                return response.status, await response.json()
            return response.status, await response.text()

    async def send(self, metrics: dict[str, list[dict[str, str]]]) -> None:
        """One OTLP/HTTP request: gauge name -> the attribute sets of its points."""
        request = ExportMetricsServiceRequest()
        scope = request.resource_metrics.add().scope_metrics.add()
        for name, points in metrics.items():
            metric = scope.metrics.add(name=name)
            for attributes in points:
                point = metric.gauge.data_points.add(time_unix_nano=time.time_ns(), as_double=1)
                for key, value in attributes.items():
                    point.attributes.add(key=key).value.string_value = value
        url = f"http://127.0.0.1:{self.ports['http']}/v1/metrics"
        headers = {"Content-Type": "application/x-protobuf"}
        async with self.http.post(url, data=request.SerializeToString(), headers=headers) as answer:
            assert answer.status == 200, await answer.text()

    async def graph(self) -> dict[str, Any]:
        status, body = await self.get("/api/console/graph")
        assert status == 200, body
        result: dict[str, Any] = body
        return result


@pytest.fixture
async def gateway() -> AsyncIterator[Gateway]:
    ports = {"http": free_port(), "telemetry": free_port(), "next": free_port()}
    config = load_config_text(CONFIG.format(**ports), registry_with_capture(), {})
    service = Service(config)
    playground.install(service.host, config)  # as `metricgate run` does
    await service.start()
    gateway = Gateway(service, config, ports)
    try:
        yield gateway
    finally:
        await gateway.http.close()
        await service.shutdown()


def edge(graph: dict[str, Any], pipeline_id: str, source: str, target: str) -> float:
    (pipeline,) = [p for p in graph["pipelines"] if p["id"] == pipeline_id]
    (found,) = [e for e in pipeline["edges"] if (e["from"], e["to"]) == (source, target)]
    rate: float = found["points_per_second"]
    return rate


TRAFFIC = {
    "http_requests": [{"route": f"/api/item{i}"} for i in range(10)],
    "debug_probe": [{"route": "/x"}] * 5,
}


async def test_graph_shows_every_configured_edge_with_its_rate(gateway: Gateway) -> None:
    graph = await gateway.graph()
    assert [p["id"] for p in graph["pipelines"]] == ["metrics", "metrics/next"]
    main_pipeline = graph["pipelines"][0]
    assert [r["id"] for r in main_pipeline["receivers"]] == ["otlp"]
    assert [(p["id"], p["type"]) for p in main_pipeline["processors"]] == [
        ("relabel", "relabel"),
        ("cardinality_limit", "cardinality_limit"),
    ]
    assert main_pipeline["exporters"] == ["capture"]

    await gateway.send(TRAFFIC)
    found: dict[str, Any] = {}

    async def look() -> None:
        found.update(await gateway.graph())

    def all_edges_live() -> bool:
        return (
            bool(found)
            and all(
                edge(found, pipeline, source, target) > 0
                for pipeline, source, target in [
                    ("metrics", "receiver:otlp", "processor:relabel"),
                    ("metrics", "processor:relabel", "processor:cardinality_limit"),
                    ("metrics", "processor:cardinality_limit", "exporter:capture"),
                    ("metrics/next", "receiver:otlp", "processor:relabel"),
                    ("metrics/next", "processor:relabel", "exporter:otlp/next"),
                ]
            )
            and found["exporters"]["capture"]["sent_per_second"] > 0
        )

    await wait_until(all_edges_live, look, timeout=15, interval=0.2)
    # The receiver took 15 points; relabel dropped the 5 debug_ ones in each pipeline, and says so.
    relabel = found["pipelines"][0]["processors"][0]
    assert relabel["dropped_per_second"] > 0
    assert edge(found, "metrics", "receiver:otlp", "processor:relabel") == pytest.approx(
        edge(found, "metrics", "processor:relabel", "processor:cardinality_limit") * 15 / 10,
        rel=0.01,
    )
    registry = gateway.service.telemetry.registry
    for pipeline in ("metrics", "metrics/next"):
        outgoing = registry.get_sample_value(
            "metricgate_processor_outgoing_points_total",
            {"processor": "relabel", "pipeline": pipeline},
        )
        assert outgoing == 10
    capture = found["exporters"]["capture"]
    assert capture["health"] == "healthy"
    assert capture["queue"] == {"size": 0, "capacity": 1000, "fill": 0.0}
    assert capture["last_error"] is None


async def test_an_unreachable_exporter_is_failing_then_recovering_with_its_last_error(
    gateway: Gateway,
) -> None:
    await gateway.send({"http_requests": [{"route": "/api/a"}]})
    state: dict[str, Any] = {}

    async def look() -> None:
        state.update((await gateway.graph())["exporters"]["otlp/next"])

    await wait_until(lambda: state.get("health") == "failing", look, timeout=15, interval=0.2)
    await wait_until(lambda: state.get("last_error") is not None, look, timeout=15, interval=0.2)
    error = state["last_error"]
    assert error["level"] == "error" and "giving up" in error["message"]
    assert "Connect call failed" in error["message"] or "refused" in error["message"]
    assert error["count"] == 1 and error["time"] <= time.time()
    assert state["sent_per_second"] == 0 and state["trouble_per_second"] > 0
    assert not any(secret in json.dumps(state) for secret in SECRETS)

    # The backend comes up (another gateway on that port): delivered again, trouble still recent.
    port = gateway.ports["next"]
    backend = Service(load_config_text(NEXT_GATEWAY.format(port=port), registry_with_capture(), {}))
    await backend.start()
    try:
        await gateway.send({"http_requests": [{"route": "/api/b"}]})
        await wait_until(
            lambda: state.get("health") == "recovering", look, timeout=20, interval=0.2
        )
        assert CaptureExporter.instances["capture/next"].points() == 1
        assert state["sent_per_second"] > 0
    finally:
        await backend.shutdown()


async def test_config_view_fills_defaults_and_hides_secrets(gateway: Gateway) -> None:
    status, tree = await gateway.get("/api/console/config")
    assert status == 200
    text = json.dumps(tree)
    assert not any(secret in text for secret in SECRETS)
    assert tree["extensions"]["bearertokenauth/ci"]["token"] == "[REDACTED]"
    assert tree["exporters"]["otlp/next"]["headers"] == {"Authorization": "[REDACTED]"}
    assert tree["exporters"]["capture"]["sending_queue"]["queue_size"] == 1000  # a default
    assert tree["processors"]["relabel"]["relabel_configs"][0]["regex"] == "debug_.*"
    assert tree["service"]["pipelines"]["metrics/next"]["exporters"] == ["otlp/next"]
    status, text = await gateway.get("/api/console/config?format=yaml")
    assert status == 200 and yaml.safe_load(text) == tree


async def test_cardinality_explorer_names_the_offending_label(gateway: Gateway) -> None:
    status, panels = await gateway.get("/api/console/panels")
    assert status == 200
    assert panels["panels"] == [
        {"name": "cardinality", "title": "Cardinality", "action": False},
        {"name": "relabel", "title": "Relabel playground", "action": True},
    ]
    await gateway.send(TRAFFIC)
    status, body = await gateway.get("/api/console/cardinality?limit=1")
    assert status == 200
    assert body["tenants"] == []
    (limiter,) = body["limiters"]
    assert limiter["processor"] == "cardinality_limit"
    (metric,) = limiter["metrics"]
    assert (metric["metric"], metric["series"], metric["refused_series"]) == ("http_requests", 3, 7)
    top = {label["label"]: label["distinct_values"] for label in metric["labels"]}
    assert top["route"] == 10 and top["endpoint"] == 10
    # Per-tenant trackers are a seam: no tenant is tracked yet, so none matches.
    status, body = await gateway.get("/api/console/cardinality?tenant=team-a")
    assert (status, body["limiters"]) == (200, [])
    status, body = await gateway.get("/api/console/cardinality?limit=x")
    assert status == 400
    assert body["problems"] == ["limit: expected 1..10000, got 'x'"]


RULES = """
- source_labels: [__name__]
  regex: 'go_.*'
  action: drop
- source_labels: [route]
  regex: '/api/v1/(.*)'
  target_label: endpoint
- if: 'http_requests_total{job="internal"}'
  action: drop
"""
SERIES = ['http_requests_total{job="api",route="/api/v1/cart"}', 'go_goroutines{job="api"}']


async def test_relabel_playground_answers_as_relabel_test_does(
    gateway: Gateway, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, body = await gateway.post(
        "/api/console/relabel", {"series": "\n".join(SERIES) + "\n\n", "rules": RULES}
    )
    assert status == 200, body
    assert body["source"] == "rules"
    kept, dropped = body["results"]
    assert kept["result"] == 'http_requests_total{endpoint="cart",job="api",route="/api/v1/cart"}'
    assert [(s["outcome"], s["changed"]) for s in kept["steps"]] == [
        ("applied", False),
        ("applied", True),
        ("skipped", False),
    ]
    assert dropped["result"] is None and dropped["dropped"]["reason"] == "dropped_by_rule"
    assert [s["outcome"] for s in dropped["steps"]] == ["dropped"]

    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(RULES)
    argv = ["relabel-test", "--config", str(rules_file)]
    assert main([*argv, "--series", SERIES[0], "--series", SERIES[1]]) == 0
    printed = capsys.readouterr().out
    assert printed == f"{kept['text']}\n\n{dropped['text']}\n"

    # A configured processor, picked by id; its rules are listed for the editor.
    status, listing = await gateway.get("/api/console/relabel")
    assert status == 200
    (configured,) = listing["processors"]
    assert configured["id"] == "relabel"
    assert yaml.safe_load(configured["rules"])[0] == {
        "source_labels": ["__name__"],
        "regex": "debug_.*",
        "action": "drop",
    }
    status, body = await gateway.post(
        "/api/console/relabel", {"series": ['debug_x{a="1"}'], "processor": "relabel"}
    )
    assert status == 200 and body["source"] == "relabel"
    assert body["results"][0]["dropped"]["reason"] == "dropped_by_rule"


@pytest.mark.parametrize(
    ("request_body", "problem"),
    [
        ({"series": "up", "rules": "- action: [drop"}, "rules: invalid YAML at line 1, column 16"),
        ({"series": "up", "rules": "- {action: bogus}"}, "rules.relabel_configs[0].action: "),
        ({"series": "up", "rules": "{a: 1}"}, "rules.a: "),
        ({"series": 'up{}\nup{a="b"\n', "rules": "[]"}, "series line 2: "),
        ({"series": "", "rules": "[]"}, "series: expected at least one line"),
        ({"series": 'up{a="b"}'}, "rules: expected relabel rules as YAML text"),
        ({"series": "up", "processor": "relabel/x"}, "processor: no relabel processor"),
        ({"series": "up\n" * 1001, "rules": "[]"}, "series: at most 1000 lines"),
        (["not", "an", "object"], "(body): expected a JSON object"),
    ],
)
async def test_relabel_playground_refuses_bad_input_with_the_key_at_fault(
    gateway: Gateway, request_body: Any, problem: str
) -> None:
    status, body = await gateway.post("/api/console/relabel", request_body)
    assert status == 400
    assert body["problems"][0].startswith(problem), body


async def test_panels_answer_wrong_requests_with_what_to_do(gateway: Gateway) -> None:
    status, text = await gateway.post(
        "/api/console/relabel", data=b"series=up", headers={"Content-Type": "text/plain"}
    )
    assert status == 415 and "Content-Type: application/json" in text
    status, body = await gateway.post(
        "/api/console/relabel", data=b"{", headers={"Content-Type": "application/json"}
    )
    assert status == 400 and body["error"].startswith("body: expected a JSON document")
    status, text = await gateway.post("/api/console/cardinality", {})
    assert status == 405 and "has no action" in text
    status, text = await gateway.get("/api/console/nothing")
    assert status == 404 and "panels: cardinality, relabel" in text

    def broken(query: object) -> object:
        raise RuntimeError("a bug")

    gateway.service.host.add_console_panel("broken", ConsolePanel("Broken", broken))
    status, body = await gateway.get("/api/console/broken")
    assert status == 500 and "gateway log" in body["error"]

    async def whole_set(query: object) -> object:  # a panel that asks other workers
        if query.get("worker_down"):  # type: ignore[attr-defined]
            raise UnavailableError("worker 1 cannot answer")
        return {"answered": True}

    gateway.service.host.add_console_panel("set", ConsolePanel("Set", whole_set))
    assert await gateway.get("/api/console/set") == (200, {"answered": True})
    status, body = await gateway.get("/api/console/set?worker_down=1")
    assert status == 503 and body["error"] == "worker 1 cannot answer"
    with pytest.raises(ValueError, match="reserved"):
        gateway.service.host.add_console_panel("graph", ConsolePanel("x", broken))


async def test_reload_answers_that_it_is_not_available_without_a_reloader(
    gateway: Gateway,
) -> None:
    status, body = await gateway.post("/-/reload")
    assert status == 501
    assert body["message"].startswith("reload not available")
    status, _ = await gateway.get("/-/reload")
    assert status == 405


async def test_reload_applies_the_new_config_to_the_playground_and_refuses_a_bad_one(
    gateway: Gateway,
) -> None:
    """`POST /-/reload` as `metricgate run` wires it: the relabel processor's new rules reach
    the playground; an invalid config is a 400 listing its problems and changes nothing."""
    text = CONFIG.format(**gateway.ports).replace("'debug_.*'", "'trace_.*'")
    configs = [lambda: load_config_text(text, registry_with_capture(), {})]
    service = gateway.service
    reloader = Reloader(
        service,
        lambda: configs[0](),
        on_reload=[lambda config: playground.install(service.host, config)],
    )
    assert service.telemetry_server is not None
    service.telemetry_server.console.reload = reloader.answer
    status, body = await gateway.post("/-/reload")
    assert status == 200, body
    assert body["status"] == "success" and body["message"].startswith("reloaded: ")
    assert "processors.relabel (pipeline metrics)" in body["changes"]["rebuilt"]
    assert "exporters.capture" in body["changes"]["kept"]
    status, listing = await gateway.get("/api/console/relabel")
    assert yaml.safe_load(listing["processors"][0]["rules"])[0]["regex"] == "trace_.*"
    status, metrics = await gateway.get("/metrics")
    assert "metricgate_config_last_reload_successful 1.0" in metrics

    bad = text.replace("max_series_per_metric: 3", "max_series_per_metric: many")
    configs[0] = lambda: load_config_text(bad, registry_with_capture(), {})
    status, body = await gateway.post("/-/reload")
    assert status == 400 and body["status"] == "error"
    assert body["problems"][0].startswith("processors.cardinality_limit.max_series_per_metric:")
    status, metrics = await gateway.get("/metrics")
    assert "metricgate_config_last_reload_successful 0.0" in metrics
    status, listing = await gateway.get("/api/console/relabel")
    assert yaml.safe_load(listing["processors"][0]["rules"])[0]["regex"] == "trace_.*"


async def test_page_is_served_from_package_data_and_loads_nothing_from_elsewhere(
    gateway: Gateway,
) -> None:
    async with gateway.http.get(gateway.url("/")) as response:
        assert response.status == 200 and response.content_type == "text/html"
        page = await response.text()
        policy = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert '<script src="/console/console.js"' in page and "http" not in page.split("<body>")[0]
    for name, kind in (("console.js", "text/javascript"), ("console.css", "text/css")):
        async with gateway.http.get(gateway.url(f"/console/{name}")) as response:
            assert (response.status, response.content_type) == (200, kind)
            assert "://" not in await response.text()
    for missing in ("/console/index.html", "/console/secrets.yaml", "/console/..%2Fserver.py"):
        status, _ = await gateway.get(missing)
        assert status == 404


async def test_the_admin_gate_guards_every_console_route_and_nothing_else(
    gateway: Gateway,
) -> None:
    async def admins_only(request: web.Request) -> None:
        raise web.HTTPForbidden(text="the console needs the admin role\n")

    assert gateway.service.telemetry_server is not None
    gateway.service.telemetry_server.console.admin_gate = admins_only
    for path in ("/", "/console/console.js", "/api/console/graph", "/api/console/config",
                 "/api/console/panels", "/api/console/cardinality"):  # fmt: skip
        status, text = await gateway.get(path)
        assert (status, text) == (403, "the console needs the admin role\n"), path
    for path in ("/-/reload", "/api/console/relabel"):
        status, _ = await gateway.post(path, {})
        assert status == 403, path
    status, _ = await gateway.get("/metrics")
    assert status == 200
