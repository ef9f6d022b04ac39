"""The genai_cost processor: exact cost, cumulative/delta input, resets, unknown models, sources."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from metricgate.model import (
    INTERNER,
    Batch,
    HistogramPoint,
    Metric,
    MetricKind,
    MetricPoints,
    Temporality,
    sorted_attributes,
)
from metricgate.pipeline.host import Host
from metricgate.processors.genai_cost import GenAICostConfig, GenAICostProcessor
from metricgate.telemetry import SelfMetrics
from tests.support.sink import Sink as BaseSink

T0 = 1_700_000_000_000_000_000
S = 1_000_000_000
AGENT = {"agent_id": "a-1", "agent_type": "planner", "provider": "openai"}
AGENT_KEY = ("a-1", "planner", "openai")


class Sink(BaseSink):
    def costs(self) -> dict[tuple[str, ...], float]:
        """Last produced agent.cost per (agent_id, agent_type, provider) over all batches."""
        out: dict[tuple[str, ...], float] = {}
        for batch in self.batches:
            for group in batch.metrics:
                if group.metric.scope.name != "metricgate.genai_cost":
                    continue
                assert group.metric.name == "agent.cost"
                assert group.metric.unit == "{USD}" and group.metric.is_counter
                assert group.metric.temporality is Temporality.CUMULATIVE
                for series, value in zip(group.series, group.values, strict=True):
                    labels = {k: str(v) for k, v in series.attributes}
                    key = (labels["agent_id"], labels["agent_type"], labels["provider"])
                    assert isinstance(value, float)
                    out[key] = value
        return out


def resource(attributes: dict[str, str] | None) -> Any:
    return INTERNER.intern_resource(
        sorted_attributes({"service.name": "svc", **(attributes or {})})
    )


def token_metric(temporality: Temporality, res: dict[str, str] | None) -> Metric:
    return INTERNER.intern_metric(
        resource(res),
        INTERNER.intern_scope("metricgate.catalog"),
        "agent.token.usage",
        "{token}",
        MetricKind.SUM,
        temporality,
        True,
    )


def tokens(
    points: list[tuple[str, float, int]],
    temporality: Temporality = Temporality.CUMULATIVE,
    start: int = 0,
    labels: dict[str, str] | None = None,
    res: dict[str, str] | None = None,
) -> Batch:
    """Catalog points as (token_type, value, seconds after T0), started at `start` seconds."""
    metric = token_metric(temporality, res)
    group = MetricPoints(metric)
    for token_type, value, ts in points:
        attrs = sorted_attributes({**(labels or AGENT), "token_type": token_type})
        group.append(INTERNER.intern_series(metric, attrs), value, T0 + ts * S, T0 + start * S)
    return Batch([group])


def genai(
    points: list[tuple[str, float, int]],
    model: str = "gpt-4o-mini",
    temporality: Temporality = Temporality.DELTA,
    res: dict[str, str] | None = None,
) -> Batch:
    """gen_ai.client.token.usage histogram points as (token type, sum, seconds)."""
    metric = INTERNER.intern_metric(
        resource(res),
        INTERNER.intern_scope("openai-instrumentation"),
        "gen_ai.client.token.usage",
        "{token}",
        MetricKind.HISTOGRAM,
        temporality,
    )
    group = MetricPoints(metric)
    for token_type, total, ts in points:
        attrs = sorted_attributes(
            {
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": model,
                "gen_ai.token.type": token_type,
            }
        )
        point = HistogramPoint(1, total, (100.0,), (0, 1))
        group.append(INTERNER.intern_series(metric, attrs), point, T0 + ts * S, T0)
    return Batch([group])


def processor(**config: Any) -> tuple[GenAICostProcessor, Sink]:
    sink = Sink()
    config.setdefault("default_models", {"openai": "gpt-4o-mini"})
    return GenAICostProcessor("genai_cost", GenAICostConfig(**config), sink), sink


# gpt-4o-mini: input 0.15, output 0.60 USD per million tokens (built-in table).
IN, OUT = 0.15e-6, 0.60e-6


async def test_input_and_output_priced_separately_total_ignored() -> None:
    proc, sink = processor()
    batch = tokens([("input", 1000, 10), ("output", 500, 10), ("total", 1500, 10)])
    await proc.consume(batch)
    assert sink.costs() == {AGENT_KEY: pytest.approx(1000 * IN + 500 * OUT, rel=1e-12)}
    assert sink.batches[0].metrics[0] is batch.metrics[0]  # input passes through unchanged
    assert len(sink.batches[0].metrics) == 2


async def test_cumulative_input_is_priced_by_its_increments() -> None:
    proc, sink = processor()
    await proc.consume(tokens([("input", 1000, 10)]))
    await proc.consume(tokens([("input", 1500, 20)]))
    await proc.consume(tokens([("input", 1500, 20)]))  # a resent point adds nothing
    await proc.consume(tokens([("input", 4000, 30)]))
    assert sink.costs()[AGENT_KEY] == pytest.approx(4000 * IN, rel=1e-12)


async def test_delta_input_is_priced_directly() -> None:
    proc, sink = processor()
    for ts in (10, 20, 30):
        await proc.consume(tokens([("output", 1000, ts)], Temporality.DELTA))
    assert sink.costs()[AGENT_KEY] == pytest.approx(3000 * OUT, rel=1e-12)


async def test_counter_reset_counts_the_new_value_and_cost_stays_monotonic() -> None:
    proc, sink = processor()
    await proc.consume(tokens([("input", 1000, 10)]))
    await proc.consume(tokens([("input", 200, 20)]))  # went down: restarted from 0
    await proc.consume(tokens([("input", 300, 30), ("input", 350, 40)], start=25))  # new start
    values = [float(v) for b in sink.batches for g in b.metrics[1:] for v in g.values]  # type: ignore[arg-type]
    assert values == sorted(values)
    assert sink.costs()[AGENT_KEY] == pytest.approx((1000 + 200 + 300 + 50) * IN, rel=1e-12)


async def test_model_from_point_attribute_and_dated_snapshot() -> None:
    proc, sink = processor(default_models={})
    labels = {**AGENT, "model": "gpt-4o-2024-08-06"}
    await proc.consume(tokens([("input", 1_000_000, 10)], labels=labels))
    assert sink.costs()[AGENT_KEY] == pytest.approx(2.50)


async def test_model_from_resource_attribute() -> None:
    proc, sink = processor(default_models={})
    await proc.consume(tokens([("output", 2_000_000, 10)], res={"gen_ai.request.model": "gpt-4o"}))
    assert sink.costs()[AGENT_KEY] == pytest.approx(20.0)


async def test_inline_prices_override_the_builtin_table() -> None:
    proc, sink = processor(prices={"openai": {"gpt-4o-mini": {"input": 1, "output": 2}}})
    await proc.consume(tokens([("input", 1_000_000, 10), ("output", 1_000_000, 10)]))
    assert sink.costs()[AGENT_KEY] == pytest.approx(3.0)


async def test_unknown_models_are_counted_logged_and_never_priced(
    caplog: pytest.LogCaptureFixture,
) -> None:
    proc, sink = processor(default_models={})
    telemetry = SelfMetrics()
    await proc.start(Host(telemetry))
    labels = {**AGENT, "model": "gpt-99"}
    with caplog.at_level(logging.WARNING):
        await proc.consume(tokens([("input", 10, 10), ("output", 10, 10)], labels=labels))
        await proc.consume(tokens([("input", 10, 20)], labels=labels))
        await proc.consume(tokens([("input", 10, 20)]))  # no model at all
    assert sink.costs() == {}
    assert all(len(b.metrics) == 1 for b in sink.batches)
    assert proc.unknown.counts == {("openai", "gpt-99"): 3, ("openai", "unset"): 1}
    sample = telemetry.registry.get_sample_value(
        "metricgate_genai_cost_unknown_model_points_total",
        {"processor": "genai_cost", "provider": "openai", "model": "gpt-99"},
    )
    assert sample == 3
    warnings = [r for r in caplog.records if "no price" in r.getMessage()]
    assert len(warnings) == 1 and "openai/gpt-99 (2 points)" in warnings[0].getMessage()


async def test_genai_histogram_sum_is_priced_and_mapped_to_catalog_labels() -> None:
    proc, sink = processor(source="genai")
    res = {"gen_ai.agent.name": "researcher", "service.instance.id": "pod-7"}
    await proc.consume(genai([("input", 1000, 10), ("output", 100, 10)], res=res))
    await proc.consume(genai([("input", 1000, 20)], res=res))
    assert sink.costs() == {
        ("pod-7", "researcher", "openai"): pytest.approx(2000 * IN + 100 * OUT, rel=1e-12)
    }


async def test_genai_cumulative_histogram_uses_sum_increments() -> None:
    proc, sink = processor(source="genai")
    await proc.consume(genai([("input", 1000, 10)], temporality=Temporality.CUMULATIVE))
    await proc.consume(genai([("input", 2500, 20)], temporality=Temporality.CUMULATIVE))
    assert sink.costs() == {("svc", "svc", "openai"): pytest.approx(2500 * IN, rel=1e-12)}


async def test_auto_never_counts_the_same_usage_twice() -> None:
    proc, sink = processor()
    both = Batch([*genai([("input", 1000, 10)]).metrics, *tokens([("input", 1000, 10)]).metrics])
    await proc.consume(both)
    await proc.consume(genai([("input", 1000, 20)]))  # this resource sends the catalog metric
    assert sink.costs() == {AGENT_KEY: pytest.approx(1000 * IN, rel=1e-12)}
    # another resource that only has gen_ai instrumentation is still priced
    await proc.consume(genai([("input", 1000, 30)], res={"service.name": "other"}))
    assert sink.costs()[("other", "other", "openai")] == pytest.approx(1000 * IN, rel=1e-12)


async def test_source_catalog_ignores_genai() -> None:
    proc, sink = processor(source="catalog")
    await proc.consume(genai([("input", 1000, 10)]))
    assert sink.costs() == {}


async def test_unrelated_batches_pass_as_the_same_object() -> None:
    proc, sink = processor()
    batch = tokens([("total", 5, 10)])
    await proc.consume(batch)
    assert sink.batches == [batch]
    assert sink.batches[0] is batch


async def test_a_swept_output_forgets_its_inputs_together() -> None:
    now = [0.0]
    sink = Sink()
    config = GenAICostConfig(default_models={"openai": "gpt-4o-mini"}, max_staleness=60)
    proc = GenAICostProcessor("genai_cost", config, sink, clock=lambda: now[0])
    await proc.consume(tokens([("input", 1000, 10)]))
    now[0] = 100.0
    assert proc.sweep() == 1
    assert not proc.inputs and not proc.outputs
    await proc.consume(tokens([("input", 1200, 110)]))
    assert sink.costs()[AGENT_KEY] == pytest.approx(1200 * IN, rel=1e-12)  # restarted from 0


def recorded_cost(usd: float, ts: int) -> Batch:
    """agent.cost as an instrumented program records it itself."""
    metric = INTERNER.intern_metric(
        resource(None),
        INTERNER.intern_scope("metricgate.catalog"),
        "agent.cost",
        "{USD}",
        MetricKind.SUM,
        Temporality.CUMULATIVE,
        True,
    )
    group = MetricPoints(metric)
    group.append(INTERNER.intern_series(metric, sorted_attributes(dict(AGENT))), usd, T0 + ts * S)
    return Batch([group])


async def test_a_resource_recording_its_own_cost_is_not_priced_again() -> None:
    proc, sink = processor()
    both = Batch([*tokens([("input", 1000, 10)]).metrics, *recorded_cost(0.5, 10).metrics])
    await proc.consume(both)
    assert sink.costs() == {}
    assert sink.batches == [both]


async def test_skip_resources_with_cost_can_be_switched_off() -> None:
    proc, sink = processor(skip_resources_with_cost=False)
    await proc.consume(Batch([*tokens([("input", 1000, 10)]).metrics]))
    await proc.consume(recorded_cost(0.5, 10))
    await proc.consume(Batch([*tokens([("input", 2000, 20)]).metrics]))
    assert sink.costs()[AGENT_KEY] == pytest.approx(2000 * IN, rel=1e-12)
