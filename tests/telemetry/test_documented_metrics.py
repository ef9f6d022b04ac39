"""The own-telemetry table of the docs against what a gateway running every component registers.

Both ways: every `metricgate_*` family a gateway with every built-in component registers is in the
table (with its labels, when the table lists them), and every name in the table is registered.
The table may abbreviate a name in the same cell as a full one: `metricgate_exporter_queue_size`,
`..._capacity` reads as `metricgate_exporter_queue_capacity` (the shortest prefix of the full name,
at an underscore, that makes a registered name).
"""

from __future__ import annotations

import re
from pathlib import Path

from metricgate.components import BUILTIN_FACTORIES, default_registry
from metricgate.config.loader import load_config_text
from metricgate.pipeline.registry import Kind
from metricgate.pipeline.service import Service
from metricgate.role import WorkerRole
from metricgate.telemetry.metrics import SelfMetrics
from metricgate.workers import WorkerExchange
from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
_ROW = re.compile(r"^\|\s*`(?:metricgate_|process_)")
_NAME = re.compile(r"`(metricgate_\w+|\.\.\._\w+)(?:\{([^}]*)\})?`")


def documented_rows() -> list[str]:
    """The first cells of the own-telemetry table's rows (README or docs/)."""
    sources = [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.md"))]
    return [
        line.split("|")[1]
        for source in sources
        if source.is_file()
        for line in source.read_text(encoding="utf-8").splitlines()
        if _ROW.match(line)
    ]


def documented(cells: list[str], registered: dict[str, tuple[str, ...]]) -> dict[str, str]:
    """Documented family name (`_total` removed) -> the labels the table gives ("" for none)."""
    out: dict[str, str] = {}
    for cell in cells:
        full = ""
        for name, labels in _NAME.findall(cell):
            if name.startswith("..."):
                assert full, f"{name} abbreviates no full name before it: {cell}"
                parts = full.split("_")
                candidates = ["_".join(parts[:i]) + name[3:] for i in range(1, len(parts))]
                name = next((c for c in candidates if _family(c) in registered), candidates[-1])
            else:
                full = _family(name)
            out[_family(name)] = labels
    return out


def _family(name: str) -> str:
    return name.removesuffix("_total")


CONFIG = """
receivers:
  otlp:
    protocols:
      grpc: {{endpoint: "127.0.0.1:{p[0]}"}}
      http: {{endpoint: "127.0.0.1:{p[1]}"}}
  prometheus:
    config:
      scrape_configs: [{{job_name: j, static_configs: [{{targets: ["127.0.0.1:{p[2]}"]}}]}}]
  pushgateway: {{endpoint: "127.0.0.1:{p[3]}"}}
  prometheus_remote_write: {{endpoint: "127.0.0.1:{p[4]}"}}
processors:
  memory_limiter: {{limit_mib: 4096}}
  aggregate: {{rules: [{{match: g, interval: 1m, outputs: [sum_samples]}}]}}
  cardinality_limit: {{max_series: 1000}}
  attributes: {{actions: [{{key: k, action: delete}}]}}
  batch: {{}}
  cumulative_to_delta: {{}}
  delta_to_cumulative: {{}}
  filter: {{}}
  genai_cost: {{}}
  relabel: {{relabel_configs: []}}
  resource: {{actions: [{{key: k, action: delete}}]}}
  routing: {{table: [{{tenants: [a], exporters: [debug]}}]}}
exporters:
  debug: {{}}
  otlp: {{endpoint: "127.0.0.1:{p[5]}", tls: {{insecure: true}}}}
  prometheus: {{endpoint: "127.0.0.1:{p[6]}"}}
  loadbalancing:
    protocol: {{otlp: {{tls: {{insecure: true}}}}}}
    resolver: {{static: {{hostnames: ["127.0.0.1:{p[7]}"]}}}}
  datadog: {{api: {{key: k}}, endpoint: "http://127.0.0.1:{p[8]}"}}
  cloudwatch: {{namespace: N, region: us-east-1, endpoint: "http://127.0.0.1:{p[9]}"}}
  prometheus_remote_write:
    endpoint: "http://127.0.0.1:{p[10]}/api/v1/write"
    sending_queue: {{storage: {{directory: "{directory}"}}}}
service:
  telemetry: {{metrics: {{address: ""}}}}
  pipelines:
    metrics:
      receivers: [otlp, prometheus, pushgateway, prometheus_remote_write]
      processors: [memory_limiter, aggregate, cardinality_limit, attributes, batch,
                   cumulative_to_delta, delta_to_cumulative, filter, genai_cost, relabel, resource]
      exporters: [debug, otlp, prometheus, loadbalancing, datadog, cloudwatch,
                   prometheus_remote_write]
    metrics/routed: {{receivers: [otlp], processors: [routing], exporters: [debug]}}
"""


async def registered_by_every_component(tmp_path: Path) -> dict[str, tuple[str, ...]]:
    """Every `metricgate_*` family (name -> label names) of a started gateway whose config uses
    every built-in component type."""
    text = CONFIG.format(p=[free_port() for _ in range(11)], directory=tmp_path / "queue")
    config = load_config_text(text, default_registry(), {})
    used = {
        (kind, spec.factory.type)
        for kind, specs in (
            (Kind.RECEIVER, config.receivers),
            (Kind.PROCESSOR, config.processors),
            (Kind.EXPORTER, config.exporters),
        )
        for spec in specs.values()
    }
    assert used == {(f.kind, f.type) for f in BUILTIN_FACTORIES}, "a component type is missing"
    telemetry = SelfMetrics()
    # as worker 0 of two, so the families of `--workers N` are registered too
    exchange = WorkerExchange(WorkerRole(0, 2, str(tmp_path)), telemetry)
    service = Service(config, telemetry, exchange=exchange)
    await service.start()
    try:
        return {
            name: labels
            for name, labels in telemetry.labelnames().items()
            if name.startswith("metricgate_")
        }
    finally:
        await service.shutdown()


async def test_the_table_documents_every_registered_metric_and_nothing_else(
    tmp_path: Path,
) -> None:
    registered = await registered_by_every_component(tmp_path)
    table = documented(documented_rows(), registered)
    assert sorted(set(registered) - set(table)) == [], "registered but not documented"
    assert sorted(set(table) - set(registered)) == [], "documented but never registered"
    wrong_labels = {
        name: (labels, ",".join(registered[name]))
        for name, labels in table.items()
        if labels and labels.split(",") != list(registered[name])
    }
    assert wrong_labels == {}, "documented labels (first) differ from the registered ones"
