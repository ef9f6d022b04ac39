"""Config loading: substitution, key-path errors, pipeline references, warnings."""

from __future__ import annotations

import pytest

from metricgate.config import load_config_text
from metricgate.config.loader import substitute_env
from metricgate.errors import ConfigError
from metricgate.exporters.debug import DebugExporterConfig
from tests.support.capture import registry_with_capture

REGISTRY = registry_with_capture()

MINIMAL = """
exporters:
  capture: {}
  debug: {verbosity: detailed}
service:
  pipelines:
    metrics: {receivers: [], exporters: [capture]}
"""


def problems(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config_text(text, REGISTRY, env or {})
    return info.value.problems


def test_pipeline_needs_a_receiver() -> None:
    found = problems(MINIMAL)
    assert len(found) == 1
    assert found[0].startswith("service.pipelines.metrics.receivers: "), found
    assert "at least 1 item" in found[0]


def test_unknown_component_type_names_the_path_and_the_known_types() -> None:
    found = problems(
        """
exporters: {nosuch/x: {}}
service: {pipelines: {metrics: {receivers: [r], exporters: [nosuch/x]}}}
"""
    )
    assert (
        "exporters.nosuch/x: unknown exporter type 'nosuch' "
        "(known: capture, cloudwatch, datadog, debug, loadbalancing, otlp, prometheus, "
        "prometheus_remote_write)" in found
    )
    # the pipeline's reference to the invalid exporter is not reported a second time
    assert not any("exporters[0]" in p for p in found)
    assert (
        "service.pipelines.metrics.receivers[0]: references receiver 'r', "
        "which is not defined under receivers"
    ) in found


def test_unknown_key_lists_the_expected_keys() -> None:
    found = problems(
        """
exporters: {debug: {verbosty: basic}}
service: {pipelines: {metrics: {receivers: [x], exporters: [debug]}}}
"""
    )
    assert any(
        p.startswith("exporters.debug.verbosty: unknown key (expected one of:") and "verbosity" in p
        for p in found
    ), found


def test_wrong_literal_value_says_what_was_expected() -> None:
    found = problems(
        """
exporters: {debug: {verbosity: loud}}
service: {pipelines: {metrics: {receivers: [x], exporters: [debug]}}}
"""
    )
    assert any(
        p.startswith("exporters.debug.verbosity: expected 'basic' or 'detailed', got 'loud'")
        for p in found
    ), found


def test_nested_path_with_list_index() -> None:
    found = problems(
        """
exporters: {debug: {sending_queue: {queue_size: lots}}}
service: {pipelines: {metrics: {receivers: [x], exporters: [debug]}}}
"""
    )
    assert "exporters.debug.sending_queue.queue_size: expected an integer, got 'lots'" in found


def test_missing_service_section() -> None:
    assert any(p.startswith("service: required key is missing") for p in problems("exporters: {}"))


def test_bad_pipeline_id() -> None:
    found = problems("service: {pipelines: {traces: {receivers: [a], exporters: [b]}}}")
    assert any("service.pipelines: expected pipeline ids 'metrics'" in p for p in found), found


def test_invalid_yaml_reports_line() -> None:
    found = problems("service: {pipelines: [\n")
    assert found[0].startswith("<config>: invalid YAML at line")


def test_top_level_must_be_a_mapping() -> None:
    assert problems("- a\n- b\n") == ["(top level): expected a mapping, got list"]


def test_unknown_top_level_key() -> None:
    found = problems("servce: {}\n")
    assert any(p.startswith("servce: unknown key") for p in found)


def test_unused_components_are_warnings_not_errors() -> None:
    config = load_config_text(
        """
receivers: {inject: {}, inject/spare: {}}
exporters: {capture: {}, debug: {}}
service: {pipelines: {metrics: {receivers: [inject], exporters: [capture]}}}
""",
        REGISTRY,
        {},
    )
    assert config.warnings == [
        "receivers.inject/spare: defined but not used in any pipeline; ignored",
        "exporters.debug: defined but not used in any pipeline; ignored",
    ]
    assert list(config.exporters) == ["capture", "debug"]


def test_duplicate_reference_in_pipeline() -> None:
    found = problems(
        """
exporters: {debug: {}}
service: {pipelines: {metrics: {receivers: [x], exporters: [debug, debug]}}}
"""
    )
    assert "service.pipelines.metrics.exporters[1]: 'debug' is listed twice" in found


def test_durations_and_sizes_parse() -> None:
    from metricgate.config.types import parse_byte_size, parse_duration

    assert parse_duration("1h30m") == 5400.0
    assert parse_duration("250ms") == 0.25
    assert parse_duration(3) == 3.0
    assert parse_byte_size("20MiB") == 20 * 1024 * 1024
    assert parse_byte_size("1GB") == 10**9
    assert parse_byte_size(512) == 512
    for bad in ("5 parsecs", "", "-1s", True):
        with pytest.raises(ValueError, match="expected a duration"):
            parse_duration(bad)
    with pytest.raises(ValueError, match="expected a size"):
        parse_byte_size("lots")


def test_endpoint_error_message() -> None:
    from metricgate.config.types import parse_endpoint, split_endpoint

    with pytest.raises(ValueError, match=r"^expected host:port, got 'abc'$"):
        parse_endpoint("abc")
    assert split_endpoint(":8888") == ("0.0.0.0", 8888)
    assert split_endpoint("[::1]:4317") == ("::1", 4317)
    assert split_endpoint("127.0.0.1:0") == ("127.0.0.1", 0)


class TestEnvSubstitution:
    def expand(self, value: object, env: dict[str, str]) -> tuple[object, list[str], list[str]]:
        warnings: list[str] = []
        problems: list[str] = []
        return substitute_env(value, "a.b", env, warnings, problems), warnings, problems

    def test_plain_and_default(self) -> None:
        assert self.expand("${env:HOST}:4317", {"HOST": "h"})[0] == "h:4317"
        assert self.expand("${env:HOST:-0.0.0.0}:4317", {})[0] == "0.0.0.0:4317"
        assert self.expand("${env:HOST:-x}", {"HOST": "set"})[0] == "set"

    def test_whole_reference_is_typed(self) -> None:
        assert self.expand("${env:PORT}", {"PORT": "4317"})[0] == 4317
        assert self.expand("${env:ON}", {"ON": "true"})[0] is True
        assert self.expand("${env:S}", {"S": "a: [b"})[0] == "a: [b"

    def test_dollar_escape(self) -> None:
        assert self.expand("$${env:HOST}", {"HOST": "h"})[0] == "${env:HOST}"
        assert self.expand("cost $$5", {})[0] == "cost $5"

    def test_missing_variable_warns_and_is_empty(self) -> None:
        value, warnings, _ = self.expand("x${env:NOPE}y", {})
        assert value == "xy"
        assert warnings == ["a.b: environment variable NOPE is not set; using ''"]

    def test_unsupported_scheme_is_an_error(self) -> None:
        _, _, problems = self.expand("${vault:/etc/x}", {})
        assert problems == [
            "a.b: expected ${env:VAR}, ${env:VAR:-default} or ${file:PATH}, got '${vault:/etc/x}'"
        ]

    def test_relabel_group_references_pass_through(self) -> None:
        assert self.expand("${1}-$1-${name}", {})[0] == "${1}-$1-${name}"
        assert self.expand("${1}", {})[0] == "${1}"

    def test_nested_structures(self) -> None:
        value, _, _ = self.expand({"k": ["${env:A}", {"z": "${env:B:-2}"}]}, {"A": "1"})
        assert value == {"k": [1, {"z": 2}]}

    def test_substitution_reaches_component_config(self) -> None:
        config = load_config_text(
            """
receivers: {inject: {}}
exporters: {debug: {verbosity: "${env:VERB}", sending_queue: {queue_size: "${env:QS}"}}}
service: {pipelines: {metrics: {receivers: [inject], exporters: [debug]}}}
""",
            REGISTRY,
            {"VERB": "detailed", "QS": "7"},
        )
        exporter = config.exporters["debug"].config
        assert isinstance(exporter, DebugExporterConfig)
        assert exporter.verbosity == "detailed"
        assert exporter.sending_queue.queue_size == 7
