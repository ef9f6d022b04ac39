"""static_configs and the discovery builder."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from metricgate.discovery import DiscoveryConfigs, TargetGroup, discoverers


async def test_static_configs_become_one_group_per_entry() -> None:
    configs = DiscoveryConfigs.model_validate(
        {
            "static_configs": [
                {"targets": ["a:9100", "b:9100"], "labels": {"env": "prod"}},
                {"targets": ["c:8080"]},
            ]
        }
    )
    sent: list[list[TargetGroup]] = []
    [discoverer] = discoverers(configs, "node")
    await discoverer.run(sent.append)
    [groups] = sent
    assert [g.source for g in groups] == ["node/static/0", "node/static/1"]
    assert [dict(t) for t in groups[0].targets] == [
        {"__address__": "a:9100"},
        {"__address__": "b:9100"},
    ]
    assert groups[0].labels == {"env": "prod"}
    assert groups[1].labels == {}


def test_no_configs_no_discoverers() -> None:
    assert discoverers(DiscoveryConfigs(), "job") == []


@pytest.mark.parametrize("target", ["", "http://a:1", " a:1"])
def test_bad_static_target_is_refused(target: str) -> None:
    with pytest.raises(ValidationError, match="expected host:port"):
        DiscoveryConfigs.model_validate({"static_configs": [{"targets": [target]}]})


def test_unknown_key_is_refused() -> None:
    with pytest.raises(ValidationError, match="extra"):
        DiscoveryConfigs.model_validate({"statc_configs": []})


def test_bad_label_name_is_refused() -> None:
    with pytest.raises(ValidationError, match="expected label names"):
        DiscoveryConfigs.model_validate(
            {"static_configs": [{"targets": ["a:1"], "labels": {"a-b": "x"}}]}
        )


async def test_empty_label_values_are_left_out_and_refreshes_reported() -> None:
    configs = DiscoveryConfigs.model_validate(
        {"static_configs": [{"targets": ["a:1"], "labels": {"env": "", "team": "x"}}]}
    )
    refreshes: list[tuple[str, bool]] = []
    sent: list[list[TargetGroup]] = []
    [discoverer] = discoverers(configs, "job", lambda m, f: refreshes.append((m, f)))
    await discoverer.run(sent.append)
    assert sent[0][0].labels == {"team": "x"}
    assert refreshes == [("static", False)]
