"""The same sources discovered by a real Prometheus 2.42 and by metricgate: the same labels.

file_sd (JSON and YAML) and http_sd are configured identically for both; Prometheus'
`/api/v1/targets` gives each target's discovered labels, which must equal what metricgate's
discoverers send. (Debian's Prometheus is built without kubernetes_sd, and dns_sd would need a DNS
server on port 53, so those two are checked against Prometheus' documented labels instead.) Every
address is on loopback and the scrape interval long, so Prometheus' scrapes stay on this machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from metricgate.discovery import DiscoveryConfigs, discoverers
from tests.discovery.collect import Received, running
from tests.discovery.http_endpoint import Endpoint, serve
from tests.support.poll import wait_until
from tests.support.prometheus import PrometheusServer, run_prometheus

pytestmark = pytest.mark.integration

_SCRAPE_LABELS = {
    "job",
    "__scheme__",
    "__metrics_path__",
    "__scrape_interval__",
    "__scrape_timeout__",
}


def _comparable(labels: dict[str, str]) -> list[tuple[str, str]]:
    return sorted((k, v) for k, v in labels.items() if k not in _SCRAPE_LABELS and v != "")


def _prometheus_targets(prometheus: PrometheusServer) -> dict[str, list[list[tuple[str, str]]]]:
    body = requests.get(f"{prometheus.url}/api/v1/targets?state=any", timeout=10).json()
    found: dict[str, list[list[tuple[str, str]]]] = {}
    for target in body["data"]["activeTargets"] + body["data"]["droppedTargets"]:
        job = target["discoveredLabels"]["job"]
        found.setdefault(job, []).append(_comparable(target["discoveredLabels"]))
    return {job: sorted(targets) for job, targets in found.items()}


async def test_discovered_labels_match_prometheus(tmp_path: Path) -> None:
    files = tmp_path / "sd"
    files.mkdir()
    (files / "a.json").write_text(
        json.dumps(
            [
                {"targets": ["127.0.0.1:9100", "127.0.0.2:9100"], "labels": {"env": "prod"}},
                {"targets": ["127.0.0.3:9200"]},
            ]
        )
    )
    (files / "b.yml").write_text("- targets: ['127.0.0.4:9300']\n  labels: {team: infra}\n")
    endpoint = Endpoint()
    endpoint.groups([{"targets": ["127.0.0.5:8000"], "labels": {"__scheme__": "https", "dc": "x"}}])
    http_runner = await serve(endpoint)

    sd: dict[str, dict[str, Any]] = {
        "file": {"file_sd_configs": [{"files": [f"{files}/*.json", f"{files}/*.yml"]}]},
        "http": {"http_sd_configs": [{"url": endpoint.url}]},
    }
    # labelmap keeps discovered targets distinct after relabeling (Prometheus merges equal ones).
    jobs = [
        {
            "job_name": job,
            "scrape_interval": "1h",
            "relabel_configs": [{"action": "labelmap", "regex": "__meta_(.+)"}],
            **configs,
        }
        for job, configs in sd.items()
    ]
    ours: dict[str, list[list[tuple[str, str]]]] = {}
    async with contextlib.AsyncExitStack() as stack:
        for job, configs in sd.items():
            received = Received()
            for discoverer in discoverers(DiscoveryConfigs.model_validate(configs), job):
                await stack.enter_async_context(running(discoverer, received))
            await received.wait_for(lambda received=received: received.sends)
            ours[job] = sorted(_comparable(target) for target in received.targets())

        prometheus = await asyncio.to_thread(
            stack.enter_context,
            run_prometheus(tmp_path, extra_config=yaml.safe_dump({"scrape_configs": jobs})),
        )
        theirs: dict[str, list[list[tuple[str, str]]]] = {}

        async def look() -> None:
            theirs.clear()
            theirs.update(await asyncio.to_thread(_prometheus_targets, prometheus))

        def as_many() -> bool:
            return {job: len(t) for job, t in theirs.items()} == {
                j: len(t) for j, t in ours.items()
            }

        await wait_until(as_many, look, 60, 0.5)
        stack.push_async_callback(http_runner.cleanup)

    for job in sd:
        assert ours[job] == theirs[job], job
    assert len(ours["file"]) == 4 and len(ours["http"]) == 1
