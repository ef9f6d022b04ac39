"""genai_cost config: defaults, price files and overrides, errors that name the key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from metricgate.config import load_config_text
from metricgate.errors import ConfigError
from metricgate.processors.genai_cost import GenAICostConfig, builtin_prices
from tests.support.capture import registry_with_capture

TEMPLATE = """
receivers: {inject: {}}
processors:
  genai_cost: %s
exporters: {capture: {}}
service:
  pipelines:
    metrics: {receivers: [inject], processors: [genai_cost], exporters: [capture]}
"""


def load(body: str) -> GenAICostConfig:
    config = load_config_text(TEMPLATE % body, registry_with_capture(), {})
    found = config.processors["genai_cost"].config
    assert isinstance(found, GenAICostConfig)
    return found


def problems(body: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config_text(TEMPLATE % body, registry_with_capture(), {})
    return info.value.problems


def test_defaults() -> None:
    config = load("{}")
    assert config.source == "auto"
    assert config.max_staleness == 3600.0
    assert config.provider_aliases["gcp.gemini"] == "google"
    table = config.price_table()
    assert {"openai", "anthropic", "google"} <= set(table.models())


def test_builtin_table_is_complete_and_lower_case() -> None:
    tree = builtin_prices()
    assert sum(len(models) for models in tree.values()) >= 10
    for provider, models in tree.items():
        assert provider == provider.lower()
        for model, price in models.items():
            assert model == model.lower()
            assert 0 < price.input <= price.output, model


def test_prices_file_is_merged_and_inline_prices_win(tmp_path: Path) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text("acme:\n  rocket-1: {input: 1, output: 2}\n  rocket-2: {input: 3, output: 4}\n")
    config = load(
        f"{{prices_file: {str(path)!r}, prices: {{acme: {{rocket-2: {{input: 5, output: 6}}}}}}}}"
    )
    table = config.price_table()
    assert table.lookup("ACME", "rocket-1") == table.lookup("acme", "rocket-1")
    found = table.lookup("acme", "rocket-2")
    assert found is not None and (found.input, found.output) == (5, 6)
    assert table.lookup("openai", "gpt-4o") is not None  # built-in still there


def test_builtin_prices_can_be_switched_off() -> None:
    table = load("{builtin_prices: false}").price_table()
    assert table.lookup("openai", "gpt-4o") is None


def test_a_model_not_in_the_table_is_never_guessed() -> None:
    table = load("{}").price_table()
    assert table.lookup("openai", "gpt-4o-mini-tts") is None
    assert table.lookup("openai", "gpt-4") is None
    assert table.lookup("nobody", "gpt-4o") is None
    assert table.lookup("openai", "") is None


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("{source: both}", "processors.genai_cost.source: expected 'auto', 'catalog' or 'genai'"),
        (
            "{prices: {openai: {gpt-x: {input: -1, output: 2}}}}",
            "processors.genai_cost.prices.openai.gpt-x.input:",
        ),
        (
            "{prices: {openai: {gpt-x: {input: 1}}}}",
            "processors.genai_cost.prices.openai.gpt-x.output: required key is missing",
        ),
        (
            "{prices: {openai: {gpt-x: {input: 1, output: 2, cached: 0.5}}}}",
            "processors.genai_cost.prices.openai.gpt-x.cached: unknown key",
        ),
        ("{prices_file: /does/not/exist.yaml}", "processors.genai_cost.prices_file: cannot read"),
        ("{max_staleness: soon}", "processors.genai_cost.max_staleness: expected a duration"),
        ("{default_models: {openai: ''}}", "processors.genai_cost.default_models: expected non"),
        ("{currency: EUR}", "processors.genai_cost.currency: unknown key"),
    ],
)
def test_errors_name_the_key_path(body: str, expected: str) -> None:
    found = problems(body)
    assert any(line.startswith(expected) for line in found), found


def test_errors_inside_a_prices_file_name_the_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("openai:\n  gpt-x: {input: cheap, output: 1}\n")
    (line,) = problems(f"{{prices_file: {str(path)!r}}}")
    assert line.startswith("processors.genai_cost.prices_file: in ")
    assert "openai.gpt-x.input: expected a number, got 'cheap'" in line
