"""The `metricgate` command line: validate, components, version, exit codes."""

from __future__ import annotations

from pathlib import Path

import yaml

from metricgate import __version__
from metricgate.cli import default_config_text
from metricgate.config.loader import substitute_env
from tests.support.cli import metricgate


def test_version() -> None:
    result = metricgate("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"metricgate {__version__}"


def test_components_lists_builtin_types() -> None:
    result = metricgate("components")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0] == "receivers:"
    assert any(line.split()[0] == "debug" for line in lines if line.startswith("  "))


def test_validate_builtin_default_config() -> None:
    result = metricgate("validate")
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout


def builtin_endpoints(env: dict[str, str]) -> list[str]:
    warnings: list[str] = []
    problems: list[str] = []
    tree = substitute_env(yaml.safe_load(default_config_text()), "", env, warnings, problems)
    assert warnings == problems == []
    protocols = tree["receivers"]["otlp"]["protocols"]
    return [
        protocols["grpc"]["endpoint"],
        protocols["http"]["endpoint"],
        tree["exporters"]["prometheus"]["endpoint"],
        tree["service"]["telemetry"]["metrics"]["address"],
    ]


def test_builtin_default_config_ports_default_and_follow_the_environment() -> None:
    assert builtin_endpoints({}) == ["0.0.0.0:4317", "0.0.0.0:4318", "0.0.0.0:9464", "0.0.0.0:8888"]
    moved = {
        "METRICGATE_HOST": "127.0.0.1",
        "METRICGATE_OTLP_GRPC_PORT": "14317",
        "METRICGATE_OTLP_HTTP_PORT": "14318",
        "METRICGATE_PROMETHEUS_PORT": "19464",
        "METRICGATE_TELEMETRY_PORT": "18888",
    }
    assert builtin_endpoints(moved) == [
        "127.0.0.1:14317",
        "127.0.0.1:14318",
        "127.0.0.1:19464",
        "127.0.0.1:18888",
    ]


def test_validate_lists_reference_errors_beside_a_typo_under_service(tmp_path: Path) -> None:
    config = tmp_path / "typo.yaml"
    config.write_text(
        """
receivers: {otlp: {protocols: {http: {}}}}
exporters: {prometheus: {}}
service:
  telemetri: {logs: {level: debug}}
  pipelines:
    metrics: {receivers: [otlp, otlpp], processors: [batch], exporters: [promethus]}
"""
    )
    result = metricgate("validate", "--config", str(config))
    assert result.returncode == 1
    problems = [line.strip() for line in result.stderr.splitlines()[1:]]
    assert problems[0].startswith("service.telemetri: unknown key"), problems
    assert problems[1:] == [
        "service.pipelines.metrics.receivers[1]: references receiver 'otlpp', which is not "
        "defined under receivers",
        "service.pipelines.metrics.processors[0]: references processor 'batch', which is not "
        "defined under processors",
        "service.pipelines.metrics.exporters[0]: references exporter 'promethus', which is not "
        "defined under exporters",
    ]


def test_validate_reports_every_problem_with_its_key_path(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(
        """
exporters:
  debug: {verbosity: loud}
  nosuch: {}
service:
  pipelines:
    metrics: {receivers: [missing], exporters: [debug]}
"""
    )
    result = metricgate("validate", "--config", str(config))
    assert result.returncode == 1
    assert "exporters.debug.verbosity: expected 'basic' or 'detailed', got 'loud'" in result.stderr
    assert "exporters.nosuch: unknown exporter type 'nosuch'" in result.stderr
    assert (
        "service.pipelines.metrics.receivers[0]: references receiver 'missing', "
        "which is not defined under receivers" in result.stderr
    )
    assert "Traceback" not in result.stderr


def test_validate_missing_file(tmp_path: Path) -> None:
    result = metricgate("validate", "--config", str(tmp_path / "nope.yaml"))
    assert result.returncode == 1
    assert "cannot read config file" in result.stderr


def test_run_refuses_an_invalid_config_without_a_traceback(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("service: {pipelines: {}}\n")
    result = metricgate("run", "--config", str(config))
    assert result.returncode == 1
    assert "service.pipelines:" in result.stderr
    assert "Traceback" not in result.stderr


def test_readme_lists_every_command_and_flag() -> None:
    import argparse

    from metricgate.cli import build_parser

    root = Path(__file__).parents[1]
    # the command table is in the README; the catalog's and the demo's options in its doc
    readme = (root / "README.md").read_text() + (root / "docs" / "catalog.md").read_text()

    def walk(parser: argparse.ArgumentParser, prefix: str) -> list[str]:
        found = []
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    found.append(f"{prefix} {name}")
                    found += walk(sub, f"{prefix} {name}")
            else:
                found += [o for o in action.option_strings if o.startswith("--") and o != "--help"]
        return found

    missing = [item for item in walk(build_parser(), "metricgate") if item not in readme]
    assert missing == []


def test_no_command_prints_the_help() -> None:
    for args in ((), ("catalog",)):
        result = metricgate(*args)
        assert result.returncode == 2
        assert result.stdout.startswith("usage: metricgate"), result.stdout
        assert "required" not in result.stderr and "catalog_command" not in result.stdout


def test_validate_takes_set_overrides(tmp_path: Path) -> None:
    config = tmp_path / "set.yaml"
    config.write_text(
        """
receivers: {otlp: {protocols: {http: {}}}}
processors: {batch: {}}
exporters: {prometheus: {}}
service:
  pipelines:
    metrics: {receivers: [otlp], processors: [batch], exporters: [prometheus]}
"""
    )
    ok = metricgate(
        "validate",
        "--config",
        str(config),
        "--set",
        "processors.batch.timeout=2s",
        "--set=service.pipelines.metrics.processors=[]",
    )
    assert ok.returncode == 0, ok.stderr
    bad = metricgate(
        "validate",
        "--config",
        str(config),
        "--set",
        "processors.batch.timeout=soon",
        "--set",
        "service.pipelines.metrics.receivers.otlp=1",
    )
    assert bad.returncode == 1
    assert "processors.batch.timeout:" in bad.stderr
    assert (
        "service.pipelines.metrics.receivers: expected a mapping to set "
        "service.pipelines.metrics.receivers.otlp" in bad.stderr
    )
    default = metricgate("validate", "--set", "exporters.prometheus.endpoint=nowhere")
    assert default.returncode == 1
    assert "exporters.prometheus.endpoint:" in default.stderr


def test_run_refuses_a_worker_count_that_is_not_one() -> None:
    for value in ("0", "-2", "many"):
        result = metricgate("run", "--workers", value)
        assert result.returncode == 2, value
        assert f"--workers {value!r}" in result.stderr and "auto" in result.stderr
        assert "Traceback" not in result.stderr


def test_auto_workers_is_one_per_core_this_process_may_use() -> None:
    import os

    from metricgate.workers import worker_count

    assert worker_count("auto") == len(os.sched_getaffinity(0))
    assert worker_count("3") == 3
