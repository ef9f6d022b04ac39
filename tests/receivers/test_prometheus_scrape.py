"""The `prometheus` receiver in a gateway: scraping real targets, failures, staleness, limits."""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from metricgate.config import load_config_text
from metricgate.model import FLAG_NO_RECORDED_VALUE, HistogramPoint, MetricKind
from metricgate.pipeline.service import Service
from tests.receivers.prometheus_targets import PageServer, page_server
from tests.support.capture import CaptureExporter, registry_with_capture
from tests.support.poll import wait_until
from tests.support.ports import free_port


class Scraping:
    """A running gateway with a `prometheus` receiver and a `capture` exporter."""

    def __init__(self, service: Service, telemetry_port: int) -> None:
        self.service = service
        self.telemetry_port = telemetry_port
        self.capture = CaptureExporter.instances["capture"]

    def points(self, name: str) -> list[tuple[dict[str, Any], Any, int, int]]:
        """(labels, value, timestamp ns, flags) of every captured point of metric `name`."""
        return [
            (dict(s.attributes), v, t, f)
            for batch in self.capture.batches
            for group in batch
            if group.metric.name == name
            for s, v, t, f in zip(
                group.series, group.values, group.timestamps, group.flags, strict=True
            )
        ]

    async def targets(self) -> dict[str, Any]:
        url = f"http://127.0.0.1:{self.telemetry_port}/debug/targets"
        async with aiohttp.ClientSession() as session, session.get(url) as reply:
            return await reply.json()  # type: ignore[no-any-return]

    async def telemetry(self) -> str:
        url = f"http://127.0.0.1:{self.telemetry_port}/metrics"
        async with aiohttp.ClientSession() as session, session.get(url) as reply:
            return await reply.text()


@pytest.fixture
async def server() -> AsyncIterator[PageServer]:
    async with page_server() as found:
        yield found


def scraping(scrape_configs: str) -> Callable[[], Any]:
    async def start() -> Scraping:
        port = free_port()
        text = f"""
receivers:
  prometheus:
    config:
      global: {{scrape_interval: 200ms, scrape_timeout: 150ms}}
      scrape_configs:
{scrape_configs}
exporters:
  capture: {{}}
service:
  pipelines:
    metrics: {{receivers: [prometheus], exporters: [capture]}}
  telemetry:
    metrics: {{address: "127.0.0.1:{port}"}}
"""
        service = Service(load_config_text(text, registry_with_capture(), {}))
        await service.start()
        return Scraping(service, port)

    return start


@pytest.fixture
async def python_target() -> AsyncIterator[tuple[str, CollectorRegistry]]:
    registry = CollectorRegistry()
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        yield f"127.0.0.1:{port}", registry
    finally:
        server.shutdown()
        thread.join()


async def test_scrapes_a_prometheus_client_target(
    python_target: tuple[str, CollectorRegistry],
) -> None:
    address, registry = python_target
    done = Counter("jobs_done", "Jobs done.", ["queue"], registry=registry)
    done.labels("q1").inc(3)
    Gauge("temperature", "Temperature.", registry=registry).set(21.5)
    latency = Histogram("latency_seconds", "Latency.", buckets=(0.1, 1.0), registry=registry)
    for value in (0.05, 0.5, 5.0):
        latency.observe(value)
    gateway: Scraping = await scraping(
        f"""        - job_name: app
          static_configs: [{{targets: ["{address}"], labels: {{team: core}}}}]
"""
    )()
    try:
        labels = {"instance": address, "job": "app", "team": "core"}
        found = await wait_until(lambda: gateway.points("latency_seconds"))
        assert found[0][0] == labels
        assert isinstance(found[0][1], HistogramPoint) and found[0][1].bucket_counts == (1, 1, 1)
        [(jobs_labels, jobs_value, _, _)] = gateway.points("jobs_done_total")[:1]
        assert jobs_labels == {**labels, "queue": "q1"} and jobs_value == 3
        assert gateway.points("temperature")[0][1] == 21.5
        assert gateway.points("jobs_done_created") == []
        groups = [g for b in gateway.capture.batches for g in b]
        jobs = next(g for g in groups if g.metric.name == "jobs_done_total")
        assert jobs.metric.kind is MetricKind.SUM and jobs.metric.monotonic
        assert jobs.start_timestamps[0] > 1e18  # from jobs_done_created (OpenMetrics)
        assert gateway.points("up")[0][:2] == (labels, 1.0)
        assert gateway.points("scrape_samples_scraped")[0][1] > 5
        targets = await gateway.targets()
        [target] = targets["activeTargets"]
        assert target["health"] == "up" and target["labels"] == labels
        assert target["discoveredLabels"]["__address__"] == address
        assert target["scrapeUrl"] == f"http://{address}/metrics"
        text = await gateway.telemetry()
        assert (
            'metricgate_receiver_scrape_targets{job="app",receiver="prometheus",state="up"} 1.0'
            in text
        )
    finally:
        await gateway.service.shutdown(time.monotonic() + 5)


async def test_bad_pages_fail_the_scrape_with_the_line(server: PageServer) -> None:
    server.set("/bad", "ok 1\nbroken{a=} 2\n")
    server.set("/huge", "x 1\n" * 50_000)
    server.set("/slow", "slow 1\n", delay=2.0)
    server.set("/error", "nope", status=500)
    server.set("/dup", "d 1\nd 2\n")
    gateway: Scraping = await scraping(
        f"""        - job_name: bad
          static_configs: [{{targets: ["{server.address}"]}}]
          metrics_path: /bad
        - job_name: huge
          body_size_limit: 100KB
          static_configs: [{{targets: ["{server.address}"]}}]
          metrics_path: /huge
        - job_name: slow
          static_configs: [{{targets: ["{server.address}"]}}]
          metrics_path: /slow
        - job_name: error
          static_configs: [{{targets: ["{server.address}"]}}]
          metrics_path: /error
        - job_name: dup
          static_configs: [{{targets: ["{server.address}"]}}]
          metrics_path: /dup
"""
    )()
    try:

        async def errors() -> dict[str, str]:
            data = await gateway.targets()
            return {t["scrapePool"]: t["lastError"] for t in data["activeTargets"]}

        found: dict[str, str] = {}

        async def look() -> None:
            found.update(await errors())

        await wait_until(
            lambda: all(found[j] for j in ("bad", "huge", "slow", "error")), look, 20, 0.05
        )
        assert "line 2" in found["bad"] and "expected '\"'" in found["bad"]
        assert "body size limit exceeded" in found["huge"]
        assert "timed out" in found["slow"]
        assert "HTTP status 500" in found["error"]
        assert found["dup"] == ""
        ups = await wait_until(
            lambda: (
                (found := {p[0]["job"]: p[1] for p in gateway.points("up")}).keys()
                >= {"bad", "dup"}
                and found
            )
        )
        assert ups["bad"] == 0 and ups["dup"] == 1
        assert gateway.points("ok") == [] and [p[1] for p in gateway.points("d")][:1] == [1.0]
        text = await gateway.telemetry()
        assert 'reason="parse"' in text and 'reason="body_size_limit"' in text
    finally:
        await gateway.service.shutdown(time.monotonic() + 5)


async def test_staleness_when_a_series_or_the_target_goes(server: PageServer) -> None:
    server.set("/metrics", 'a{k="1"} 1\na{k="2"} 2\n')
    gateway: Scraping = await scraping(
        f"""        - job_name: st
          static_configs: [{{targets: ["{server.address}"]}}]
"""
    )()
    try:
        await wait_until(lambda: len(gateway.points("a")) >= 2)
        server.set("/metrics", 'a{k="1"} 1\n')
        stale = await wait_until(
            lambda: [p for p in gateway.points("a") if p[3] & FLAG_NO_RECORDED_VALUE]
        )
        assert [p[0]["k"] for p in stale] == ["2"] and math.isnan(stale[0][1])
        server.set("/metrics", "", status=503)
        stale = await wait_until(
            lambda: [p for p in gateway.points("a") if p[3] & FLAG_NO_RECORDED_VALUE][1:]
        )
        assert [p[0]["k"] for p in stale] == ["1"]
        assert [p for p in gateway.points("up") if p[1] == 0]
    finally:
        await gateway.service.shutdown(time.monotonic() + 5)


async def test_honor_labels_and_relabeling(server: PageServer) -> None:
    server.set("/metrics", 'm{job="exposed",instance="i",x="1"} 1\ngo_gc 2\n')
    gateway: Scraping = await scraping(
        f"""        - job_name: plain
          static_configs: [{{targets: ["{server.address}"]}}]
          metric_relabel_configs: [{{source_labels: [__name__], regex: go_.*, action: drop}}]
        - job_name: honored
          honor_labels: true
          static_configs: [{{targets: ["{server.address}"]}}]
          relabel_configs:
            - {{target_label: env, replacement: prod}}
        - job_name: dropped
          static_configs: [{{targets: ["{server.address}"]}}]
          relabel_configs: [{{source_labels: [__address__], regex: '.*', action: drop}}]
"""
    )()
    try:

        def both() -> list[Any] | None:
            found = gateway.points("m")
            return found if len({p[0]["job"] for p in found}) >= 2 else None

        found = await wait_until(both)
        by_job = {p[0]["job"]: p[0] for p in found}
        assert by_job["plain"] == {
            "exported_instance": "i",
            "exported_job": "exposed",
            "instance": server.address,
            "job": "plain",
            "x": "1",
        }
        assert by_job["exposed"] == {"env": "prod", "instance": "i", "job": "exposed", "x": "1"}
        await wait_until(lambda: len({p[0]["job"] for p in gateway.points("go_gc")}) >= 1)
        assert {p[0]["job"] for p in gateway.points("go_gc")} == {"honored"}
        data = await gateway.targets()
        assert [d["scrapePool"] for d in data["droppedTargets"]] == ["dropped"]
    finally:
        await gateway.service.shutdown(time.monotonic() + 5)


async def test_limits_fail_the_scrape(server: PageServer) -> None:
    server.set("/metrics", "a 1\nb 2\nc{" + ",".join(f'l{i}="v"' for i in range(5)) + "} 3\n")
    gateway: Scraping = await scraping(
        f"""        - job_name: samples
          sample_limit: 2
          static_configs: [{{targets: ["{server.address}"]}}]
        - job_name: labels
          label_limit: 4
          static_configs: [{{targets: ["{server.address}"]}}]
        - job_name: fine
          sample_limit: 3
          static_configs: [{{targets: ["{server.address}"]}}]
"""
    )()
    try:
        ups = await wait_until(
            lambda: (
                {p[0]["job"]: p[1] for p in gateway.points("up")}
                if len({p[0]["job"] for p in gateway.points("up")}) == 3
                else None
            )
        )
        assert ups == {"samples": 0.0, "labels": 0.0, "fine": 1.0}
        errors = {
            t["scrapePool"]: t["lastError"] for t in (await gateway.targets())["activeTargets"]
        }
        assert "sample limit exceeded" in errors["samples"]
        assert "label_limit exceeded" in errors["labels"]
        assert {p[0]["job"] for p in gateway.points("a")} == {"fine"}
    finally:
        await gateway.service.shutdown(time.monotonic() + 5)


async def test_a_target_that_leaves_discovery_ends_its_series(server: PageServer) -> None:
    from metricgate.discovery import TargetGroup
    from metricgate.receivers.prometheus import PrometheusReceiver

    server.set("/metrics", 'gone{k="1"} 1\n')
    gateway: Scraping = await scraping(
        f"""        - job_name: moving
          static_configs: [{{targets: ["{server.address}"]}}]
"""
    )()
    try:
        await wait_until(lambda: gateway.points("gone"))
        receiver = gateway.service.receivers["prometheus"]
        assert isinstance(receiver, PrometheusReceiver)
        [manager] = receiver.managers
        [source] = list(manager.groups)
        removed_at = time.time()
        manager.update([TargetGroup(source)])  # the discoverer reports the group empty
        stale = await wait_until(
            lambda: [p for p in gateway.points("gone") if p[3] & FLAG_NO_RECORDED_VALUE]
        )
        last = max(p[2] for p in gateway.points("gone") if not p[3])
        # Stamped at the first missed scrape, sent about 2 intervals after it.
        assert stale[0][2] == last + 200_000_000
        assert time.time() - removed_at >= 0.3
        assert (await gateway.targets())["activeTargets"] == []
    finally:
        await gateway.service.shutdown(time.monotonic() + 5)


async def test_a_redirecting_target_is_followed_or_fails_as_configured(server: PageServer) -> None:
    """The receiver's own client leaves redirects to aiohttp, which follows them when
    `follow_redirects` is on (the default); off, the 302 fails the scrape."""
    server.set("/old", "", status=302, location="/new")
    server.set("/new", "moved_here 7\n")
    gateway: Scraping = await scraping(
        f"""        - job_name: follows
          static_configs: [{{targets: ["{server.address}"]}}]
          metrics_path: /old
        - job_name: stays
          follow_redirects: false
          static_configs: [{{targets: ["{server.address}"]}}]
          metrics_path: /old
"""
    )()
    try:
        found = await wait_until(lambda: gateway.points("moved_here"))
        assert found[0][0]["job"] == "follows" and found[0][1] == 7.0
        await wait_until(lambda: len(gateway.points("moved_here")) >= 3)  # and on every scrape
        data = await gateway.targets()
        errors = {t["scrapePool"]: t["lastError"] for t in data["activeTargets"]}
        assert errors["follows"] == "" and "HTTP status 302" in errors["stays"]
        assert {labels["job"] for labels, *_ in gateway.points("moved_here")} == {"follows"}
    finally:
        await gateway.service.shutdown(time.monotonic() + 5)
