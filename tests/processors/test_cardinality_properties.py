"""Properties of cardinality_limit under random traffic and clock steps (sliding window)."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from metricgate.model import INTERNER, Batch, MetricPoints, Series, Temporality, sorted_attributes
from metricgate.processors.cardinality_limit import CardinalityLimitConfig, CardinalityLimiter
from tests.support.batches import metric

WINDOW = 10.0
CAPS = {"max_series": 20, "max_series_per_metric": 12, "per_tenant": 8}
METRICS = [metric(f"prop_{i}", temporality=Temporality.DELTA) for i in range(2)]
UNIVERSE = [
    INTERNER.intern_series(m, sorted_attributes({"tenant": tenant, "user": str(user)}))
    for m in METRICS
    for tenant in "abc"
    for user in range(8)
]

steps = st.lists(
    st.tuples(
        st.sampled_from([0.0, 0.5, 3.0, WINDOW - 0.1, WINDOW, 1.5 * WINDOW, 2.5 * WINDOW]),
        st.lists(st.integers(0, len(UNIVERSE) - 1), max_size=len(UNIVERSE)),
    ),
    min_size=1,
    max_size=25,
)


class _Sink:
    def __init__(self) -> None:
        self.batch: Batch | None = None

    async def consume(self, batch: Batch) -> None:
        self.batch = batch


def _tenant(series: Series) -> object:
    return dict(series.attributes).get("tenant")


async def _run(plan: list[tuple[float, list[int]]], on_limit: str) -> None:
    now = [0.0]
    sink = _Sink()
    config = CardinalityLimitConfig.model_validate(
        {
            "max_series": CAPS["max_series"],
            "max_series_per_metric": CAPS["max_series_per_metric"],
            "per_label": {"label": "tenant", "max_series": CAPS["per_tenant"]},
            "window": WINDOW,
            "on_limit": on_limit,
        }
    )
    limiter = CardinalityLimiter("cardinality_limit", config, sink, clock=lambda: now[0])
    passed_at: dict[Series, float] = {}
    seen_at: dict[Series, float] = {}
    for advance, indexes in plan:
        now[0] += advance
        groups = {m: MetricPoints(m) for m in METRICS}
        for index in indexes:
            one = UNIVERSE[index]
            groups[one.metric].append(one, 1.0, 1)
        sink.batch = None
        await limiter.consume(Batch([g for g in groups.values() if g.series]))
        out: list[MetricPoints] = [] if sink.batch is None else list(sink.batch.metrics)
        passed = {s for g in out for s in g.series if "user" in dict(s.attributes)}
        for one in {UNIVERSE[i] for i in indexes}:
            previous = seen_at.get(one)
            if previous is not None and now[0] - previous < WINDOW:
                # verdicts are sticky while the series stays active
                assert (one in passed) == (passed_at.get(one) == previous)
            seen_at[one] = now[0]
        for one in passed:
            passed_at[one] = now[0]
        active = [s for s, t in passed_at.items() if now[0] - t < WINDOW]
        assert len(active) <= CAPS["max_series"]
        for m in METRICS:
            assert sum(s.metric is m for s in active) <= CAPS["max_series_per_metric"]
        for tenant in "abc":
            assert sum(_tenant(s) == tenant for s in active) <= CAPS["per_tenant"]
        if on_limit == "overflow":  # delta sums: every input point is passed or folded
            assert sum(v for g in out for v in g.values if isinstance(v, float)) == len(indexes)


@settings(max_examples=200, deadline=None)
@given(plan=steps, on_limit=st.sampled_from(["overflow", "drop"]))
def test_passed_series_respect_the_caps_and_admitted_ones_keep_passing(
    plan: list[tuple[float, list[int]]], on_limit: str
) -> None:
    asyncio.run(_run(plan, on_limit))
