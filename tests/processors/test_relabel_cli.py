"""`metricgate relabel-test`: rule-by-rule output for a series, from any of the config shapes."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from metricgate.components import default_registry
from metricgate.processors.relabel.cli import add_relabel_test_command

GATEWAY = """
receivers: {otlp: {protocols: {http: {endpoint: "127.0.0.1:0"}}}}
processors:
  relabel/first:
    relabel_configs:
      - source_labels: [code]
        regex: '(\\d)\\d\\d'
        target_label: class
        replacement: '$${1}xx'
      - {action: drop, if: '{class="5xx"}'}
      - {action: labeldrop, regex: code}
      - {target_label: __tmp_scratch, replacement: x}
  relabel/second:
    metric_relabel_configs: [{action: keep, source_labels: [job], regex: api}]
exporters: {debug: {}}
service:
  pipelines:
    metrics: {receivers: [otlp], processors: [relabel/first, relabel/second], exporters: [debug]}
"""


def relabel_test(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="metricgate")
    add_relabel_test_command(parser.add_subparsers(dest="command", required=True), default_registry)
    args = parser.parse_args(["relabel-test", *argv])
    result: int = args.func(args)
    return result


def test_prints_each_rule_and_the_labels_after_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text(GATEWAY)
    status = relabel_test(
        "--config",
        str(config),
        "--processor",
        "relabel/first",
        "--series",
        'http_requests_total{job="api",code="200"}',
        "--series",
        'http_requests_total{code="503"}',
    )
    assert status == 0
    assert capsys.readouterr().out == (
        'input:   http_requests_total{code="200",job="api"}\n'
        "rule 1: {action: replace, source_labels: [code], regex: '(\\d)\\d\\d', "
        "target_label: class, replacement: '${1}xx'}\n"
        '    -> http_requests_total{class="2xx",code="200",job="api"}\n'
        "rule 2: {action: drop, if: '{class=\"5xx\"}'}  (if: did not match; skipped)\n"
        "rule 3: {action: labeldrop, regex: 'code'}\n"
        '    -> http_requests_total{class="2xx",job="api"}\n'
        "rule 4: {action: replace, target_label: __tmp_scratch, replacement: 'x'}\n"
        '    -> http_requests_total{__tmp_scratch="x",class="2xx",job="api"}\n'
        'result:  http_requests_total{class="2xx",job="api"}\n'
        "\n"
        'input:   http_requests_total{code="503"}\n'
        "rule 1: {action: replace, source_labels: [code], regex: '(\\d)\\d\\d', "
        "target_label: class, replacement: '${1}xx'}\n"
        '    -> http_requests_total{class="5xx",code="503"}\n'
        "rule 2: {action: drop, if: '{class=\"5xx\"}'}  => dropped\n"
        "result:  dropped (dropped_by_rule): dropped by {action: drop, if: '{class=\"5xx\"}'}\n"
    )


def test_a_plain_rule_list_works_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("- {action: labelkeep, regex: 'a'}\n")
    assert relabel_test("-c", str(rules), "-s", 'm{a="1",b="2"}') == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "result:  dropped (invalid_metric_name): invalid metric name ''"
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            [],
            "expected one relabel processor or --processor (found: relabel/first, relabel/second)",
        ),
        (["--processor", "relabel/nope"], "no relabel processor 'relabel/nope'"),
        (["--processor", "relabel/second", "-s", 'm{a=~"x"}'], 'expected label="value" pairs only'),
    ],
)
def test_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text(GATEWAY)
    series = [] if "-s" in argv else ["-s", "m"]
    assert relabel_test("-c", str(config), *argv, *series) == 1
    assert message in capsys.readouterr().err


def test_config_errors_name_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("relabel_configs: [{action: hashmod, source_labels: [a], target_label: b}]\n")
    assert relabel_test("-c", str(rules), "-s", "m") == 1
    assert "relabel_configs[0].modulus: required for action hashmod" in capsys.readouterr().err
