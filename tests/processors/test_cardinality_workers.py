"""`/debug/cardinality` under `--workers N`: limiters that each saw their workers' metrics,
merged, report what one limiter that saw everything reports."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from metricgate import role
from metricgate.model import INTERNER, Batch, MetricPoints, Temporality, sorted_attributes
from metricgate.processors.cardinality_limit import CardinalityLimitConfig, CardinalityLimiter
from metricgate.processors.cardinality_limit.offenders import merge_reports, report
from tests.support.batches import metric

METRICS = [metric(f"worker_metric_{i}", temporality=Temporality.DELTA) for i in range(6)]


class _Sink:
    async def consume(self, batch: Batch) -> None:
        pass


def _limiter() -> CardinalityLimiter:
    config = CardinalityLimitConfig.model_validate({"max_series_per_metric": 5})
    return CardinalityLimiter("cardinality_limit", config, _Sink(), clock=lambda: 0.0)


async def _feed(limiter: CardinalityLimiter, traffic: list[tuple[int, int]]) -> None:
    groups: dict[int, MetricPoints] = {}
    for m, user in traffic:
        group = groups.setdefault(m, MetricPoints(METRICS[m]))
        attributes = sorted_attributes({"user": f"u{user}", "zone": f"z{user % 3}"})
        group.append(INTERNER.intern_series(METRICS[m], attributes), 1.0, 1)
    if groups:
        await limiter.consume(Batch(list(groups.values())))


def _ranked(found: dict[str, object]) -> list[tuple[int, int]]:
    """The chosen metrics' ranking keys (ties may pick either metric of equal rank)."""
    metrics = found["metrics"]
    assert isinstance(metrics, list)
    return [(m["series"] + m["refused_series"], m["refused_series"]) for m in metrics]


@settings(max_examples=60, deadline=None)
@given(
    traffic=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 12)), max_size=80),
    workers=st.integers(2, 4),
    limit=st.integers(1, 8),
)
def test_merged_workers_report_what_one_process_reports(
    traffic: list[tuple[int, int]], workers: int, limit: int
) -> None:
    whole = _limiter()
    parts = [_limiter() for _ in range(workers)]
    asyncio.run(_feed(whole, traffic))
    for index, part in enumerate(parts):
        owned = [(m, u) for m, u in traffic if role.owner(METRICS[m].name, workers) == index]
        asyncio.run(_feed(part, owned))
    expected = report(whole, limit)
    (merged,) = merge_reports([[report(part, limit)] for part in parts], {"limit": str(limit)})
    for total in ("active_series", "refused_series", "metrics_tracked"):
        assert merged[total] == expected[total], total
    assert _ranked(merged) == _ranked(expected)
    by_name = {m["metric"]: m for m in expected["metrics"]}
    for found in merged["metrics"]:
        if found["metric"] in by_name:
            assert found == by_name[found["metric"]]  # a metric's entry is its owner's, whole
