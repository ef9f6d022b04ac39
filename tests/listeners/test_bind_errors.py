"""A port already taken: every listener's start-up error names its component and the address."""

from __future__ import annotations

import errno
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from metricgate.config import load_config_text
from metricgate.listeners import ListenError
from metricgate.pipeline.service import Service
from tests.support.capture import registry_with_capture

PIPELINE = """
service:
  pipelines:
    metrics: {{receivers: [{receiver}], exporters: [{exporter}]}}
  telemetry:
    metrics: {{address: "{telemetry}"}}
"""
CASES = {
    "otlp http": (
        'receivers: {{otlp/in: {{protocols: {{http: {{endpoint: "{taken}"}}}}}}}}',
        "otlp/in",
        'receiver "otlp/in" (http)',
    ),
    "otlp grpc": (
        'receivers: {{otlp/in: {{protocols: {{grpc: {{endpoint: "{taken}"}}}}}}}}',
        "otlp/in",
        'receiver "otlp/in" (grpc)',
    ),
    "remote-write": (
        'receivers: {{prometheus_remote_write/rw: {{endpoint: "{taken}"}}}}',
        "prometheus_remote_write/rw",
        'receiver "prometheus_remote_write/rw"',
    ),
    "pushgateway": (
        'receivers: {{pushgateway: {{endpoint: "{taken}"}}}}',
        "pushgateway",
        'receiver "pushgateway"',
    ),
    "prometheus exporter": (
        'exporters: {{prometheus/page: {{endpoint: "{taken}"}}}}',
        "prometheus/page",
        'exporter "prometheus/page"',
    ),
    "telemetry server": ("", "", "telemetry server (service.telemetry.metrics)"),
}


@pytest.fixture
def taken() -> Iterator[str]:
    """An address with a listening socket on it."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield f"127.0.0.1:{holder.getsockname()[1]}"


def config_text(case: str, taken: str) -> str:
    section, component_id, _ = CASES[case]
    receiver = component_id if section.startswith("receivers") else "otlp"
    exporter = component_id if section.startswith("exporters") else "capture"
    sections = [section.format(taken=taken)]
    if receiver == "otlp":
        sections.append('receivers: {otlp: {protocols: {http: {endpoint: "127.0.0.1:0"}}}}')
    if exporter == "capture":
        sections.append("exporters: {capture: {}}")
    telemetry = taken if case == "telemetry server" else ""
    pipeline = PIPELINE.format(receiver=receiver, exporter=exporter, telemetry=telemetry)
    return "\n".join(filter(None, sections)) + pipeline


@pytest.mark.parametrize("case", list(CASES))
async def test_each_listener_names_itself_and_the_address(case: str, taken: str) -> None:
    config = load_config_text(config_text(case, taken), registry_with_capture(), {})
    service = Service(config)
    with pytest.raises(ListenError) as caught:
        await service.start()
    owner = CASES[case][2]
    assert str(caught.value) == (
        f"[Errno {errno.EADDRINUSE}] {owner} cannot listen on {taken}: Address already in use"
    )
    assert caught.value.errno == errno.EADDRINUSE
    await service.shutdown(time.monotonic() + 5)


def test_metricgate_run_says_which_component_could_not_start(taken: str, tmp_path: Path) -> None:
    config = tmp_path / "clash.yaml"
    config.write_text(
        'receivers: {otlp: {protocols: {http: {endpoint: "127.0.0.1:0"}}}}\n'
        f'exporters: {{prometheus: {{endpoint: "{taken}"}}}}\n'
        "service:\n"
        "  pipelines: {metrics: {receivers: [otlp], exporters: [prometheus]}}\n"
        '  telemetry: {metrics: {address: ""}, logs: {format: console}}\n'
    )
    finished = subprocess.run(
        [sys.executable, "-m", "metricgate", "run", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert finished.returncode == 1
    assert (
        f'could not start: [Errno {errno.EADDRINUSE}] exporter "prometheus" cannot listen on '
        f"{taken}: Address already in use"
    ) in finished.stdout + finished.stderr
