"""`metricgate catalog rules|dashboards` on an argparse parser like the main command's."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from metricgate.catalog.cli import add_catalog_commands


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="metricgate")
    add_catalog_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


def test_catalog_rules(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "rules"
    assert run(["catalog", "rules", "--out", str(out), "--runbook-base-url", "https://rb"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "agent-alerts.rules.yml",
        "agent-recording.rules.yml",
    ]
    assert "https://rb/high-agent-error-rate" in (out / "agent-alerts.rules.yml").read_text()
    assert capsys.readouterr().out.count("\n") == 2


def test_catalog_dashboards(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        run(["catalog", "dashboards", "--out", str(tmp_path), "--prometheus-url", "http://p:9090"])
        == 0
    )
    assert len(list((tmp_path / "dashboards").glob("*.json"))) == 4
    assert "http://p:9090" in (tmp_path / "provisioning/datasources/datasource.yml").read_text()
    assert capsys.readouterr().out.count("\n") == 6


def test_catalog_needs_a_subcommand_and_out(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["catalog"]) == 2  # the help, not argparse's "catalog_command is required"
    assert capsys.readouterr().out.startswith("usage: metricgate catalog")
    with pytest.raises(SystemExit):
        run(["catalog", "rules"])
