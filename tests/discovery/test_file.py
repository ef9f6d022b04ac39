"""file_sd_configs: JSON and YAML target files, picked up on change and on refresh_interval."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from metricgate.config.errors import format_validation_error
from metricgate.discovery import DiscoveryConfigs, FileDiscoverer, FileSDConfig, discoverers
from tests.discovery.collect import Received, running

POLL = 0.02


def discoverer(
    patterns: list[str], refresh: str = "5m", received: Received | None = None
) -> FileDiscoverer:
    config = FileSDConfig.model_validate({"files": patterns, "refresh_interval": refresh})
    on_refresh = received.refreshed if received is not None else None
    if on_refresh is None:
        return FileDiscoverer(config, "job/file/0", poll_interval=POLL)
    return FileDiscoverer(config, "job/file/0", on_refresh, poll_interval=POLL)


def write_json(path: Path, groups: object) -> None:
    path.write_text(json.dumps(groups))


async def test_json_and_yaml_files_matched_by_a_glob(tmp_path: Path) -> None:
    write_json(
        tmp_path / "a.json",
        [{"targets": ["a:1", "b:2"], "labels": {"env": "prod"}}, {"targets": ["c:3"]}],
    )
    (tmp_path / "b.yml").write_text("- targets: ['d:4']\n  labels: {team: infra}\n")
    (tmp_path / "ignored.txt").write_text("[]")
    async with running(discoverer([str(tmp_path / "*.json"), str(tmp_path / "*.yml")])) as got:
        await got.wait_for(lambda: got.sends)
        [first] = got.sends
        assert sorted(group.source for group in first) == [
            f"job/file/0/{tmp_path}/a.json:0",
            f"job/file/0/{tmp_path}/a.json:1",
            f"job/file/0/{tmp_path}/b.yml:0",
        ]
        assert got.targets() == [
            {"__address__": "a:1", "env": "prod", "__meta_filepath": f"{tmp_path}/a.json"},
            {"__address__": "b:2", "env": "prod", "__meta_filepath": f"{tmp_path}/a.json"},
            {"__address__": "c:3", "__meta_filepath": f"{tmp_path}/a.json"},
            {"__address__": "d:4", "team": "infra", "__meta_filepath": f"{tmp_path}/b.yml"},
        ]


async def test_edits_new_files_and_removals_are_picked_up(tmp_path: Path) -> None:
    write_json(tmp_path / "a.json", [{"targets": ["a:1"]}, {"targets": ["b:2"]}])
    async with running(discoverer([str(tmp_path / "*.json")])) as got:
        await got.wait_for(lambda: got.addresses() == ["a:1", "b:2"])

        write_json(tmp_path / "a.json", [{"targets": ["a:1", "a:9"]}])  # group 1 gone
        await got.wait_for(lambda: got.addresses() == ["a:1", "a:9"])
        assert [group.source for group in got.sends[-1]] == [
            f"job/file/0/{tmp_path}/a.json:0",
            f"job/file/0/{tmp_path}/a.json:1",
        ]
        assert not got.sends[-1][1].targets

        write_json(tmp_path / "new.json", [{"targets": ["n:1"]}])
        await got.wait_for(lambda: got.addresses() == ["a:1", "a:9", "n:1"])
        # Only the new file's group is sent: the unchanged ones are not sent again.
        assert [group.source for group in got.sends[-1]] == [f"job/file/0/{tmp_path}/new.json:0"]

        (tmp_path / "a.json").unlink()
        await got.wait_for(lambda: got.addresses() == ["n:1"])


async def test_a_broken_file_keeps_its_last_groups_and_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "a.yaml"
    path.write_text("- targets: ['a:1']\n")
    received = Received()
    async with running(discoverer([str(path)], received=received), received) as got:
        await got.wait_for(lambda: got.addresses() == ["a:1"])
        with caplog.at_level(logging.WARNING, "metricgate.discovery"):
            path.write_text("- targets: ['a:1'\n")  # YAML syntax error
            await got.wait_for(lambda: ("file", True) in got.refreshes)
        assert got.addresses() == ["a:1"]
        [record] = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert str(path) in record.getMessage()
        assert "keeping its last targets" in record.getMessage()

        caplog.clear()
        with caplog.at_level(logging.INFO, "metricgate.discovery"):
            path.write_text("- targets: ['a:2']\n")
            await got.wait_for(lambda: got.addresses() == ["a:2"])
        assert any("works again" in r.getMessage() for r in caplog.records)
        assert got.refreshes[0] == ("file", False)
        assert got.refreshes[-1] == ("file", False)


@pytest.mark.parametrize(
    ("content", "error"),
    [
        ('[{"targets": ["a:1"], "labels": {"bad-name": "x"}}]', "[0].labels: expected label names"),
        ('[{"targets": ["a:1"], "extra": 1}]', "[0].extra: unknown key"),
        ('{"targets": ["a:1"]}', "expected a list"),
        ('[{"targets": ["a:1"]}, null]', "[1]: expected a mapping"),
        ("[{", "Expecting property name"),
    ],
)
async def test_malformed_json_is_refused_with_a_reason(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: str, error: str
) -> None:
    path = tmp_path / "t.json"
    write_json(path, [{"targets": ["good:1"]}])
    async with running(discoverer([str(path)])) as got:
        await got.wait_for(lambda: got.addresses() == ["good:1"])
        with caplog.at_level(logging.WARNING, "metricgate.discovery"):
            path.write_text(content)
            await got.wait_for(lambda: any(error in r.getMessage() for r in caplog.records))
        assert got.addresses() == ["good:1"]


async def test_a_file_broken_from_the_start_gives_nothing_until_fixed(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text("not json")
    async with running(discoverer([str(path)])) as got:
        await got.wait_for(lambda: got.sends)
        assert got.sends == [[]]
        write_json(path, [{"targets": ["a:1"]}])
        await got.wait_for(lambda: got.addresses() == ["a:1"])


async def test_refresh_interval_rereads_a_change_the_stamps_missed(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    write_json(path, [{"targets": ["a:1"]}])
    before = os.stat(path)
    async with running(discoverer([str(path)], refresh="300ms")) as got:
        await got.wait_for(lambda: got.addresses() == ["a:1"])
        # Same size, same inode, same modification time: only the periodic re-read sees it.
        with open(path, "r+") as handle:
            handle.write(json.dumps([{"targets": ["b:1"]}]))
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
        await got.wait_for(lambda: got.addresses() == ["b:1"])


async def test_builder_makes_one_file_discoverer_per_entry(tmp_path: Path) -> None:
    write_json(tmp_path / "a.json", [{"targets": ["a:1"]}])
    configs = DiscoveryConfigs.model_validate(
        {
            "file_sd_configs": [
                {"files": [str(tmp_path / "a.json")]},
                {"files": [str(tmp_path / "*.yml")]},
            ]
        }
    )
    first, second = discoverers(configs, "node")
    assert isinstance(first, FileDiscoverer) and first.config.refresh_interval == 300.0
    async with running(first) as got:
        await got.wait_for(lambda: got.sends)
        assert [g.source for g in got.sends[0]] == [f"node/file/0/{tmp_path}/a.json:0"]
    async with running(second) as got:
        await got.wait_for(lambda: got.sends)
        assert got.sends == [[]]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"files": []}, "file_sd_configs[0].files: expected at least one file name pattern"),
        ({}, "file_sd_configs[0].files: required key is missing"),
        ({"files": ["targets.txt"]}, "file_sd_configs[0].files: expected a path ending in .json"),
        ({"files": ["/a/*/b.json"]}, "file_sd_configs[0].files: expected a path ending in .json"),
        (
            {"files": ["a.json"], "refresh_interval": "0s"},
            "file_sd_configs[0].refresh_interval: expected a positive",
        ),
        ({"files": ["a.json"], "refresh": "1m"}, "file_sd_configs[0].refresh: unknown key"),
    ],
)
def test_config_errors_name_the_key(entry: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        DiscoveryConfigs.model_validate({"file_sd_configs": [entry]})
    problems = format_validation_error(caught.value, "", DiscoveryConfigs)
    assert any(problem.startswith(message) for problem in problems), problems
