"""The `cardinality_limit` processor: cap active series, keep existing ones flowing.

A series (metric name + attribute set, per metric descriptor) is *active* while it was seen within
`window`. Caps: `max_series` in total, `max_series_per_metric` per metric name, and `per_label`
(active series per value of a label, e.g. per tenant); 0 means no cap. When a cap is full, series
that are already active keep flowing; only *new* series are refused, and a refused series stays
refused while it stays active (sticky verdicts keep totals consistent). `on_limit: overflow`
(default) folds refused series into one overflow series per metric (see `fold`), `drop` drops
them; either way they are counted (`metricgate_cardinality_refused_series_total{metric,reason}`,
`metricgate_cardinality_folded_points_total`, `metricgate_processor_dropped_points_total`).
All of this is per tenant: each tenant (resource attribute `tenant.id`) has a budget of its own
(`budgets.py`), so one tenant's series never count against another's caps.

Windows: `sliding` (default) forgets a series between `window` and 2 x `window` after it was last
seen (generational sweep, so the hot path never writes a timestamp and existing series never
expire while active); `fixed` resets every count each `window` from start, like vmagent's hourly
limit: after a reset the first series to arrive take the slots, so an existing series can be
refused if new ones fill the cap first. Use `fixed` only to match per-hour series budgets.

Cost (bench/bench_cardinality.py, 1M series in 100 metrics, 2 vCPU): steady state is one set
lookup per point, run in C per metric group: ~4.7-5.2 M points/s (~200 ns/point); a new series
costs one decision: ~0.5 M new series/s. Memory is bounded by the caps: the limiter's own state
is ~54 bytes per admitted series (generation set entry plus exact label-value counts), ~90-105
bytes/series in the window after a rotation (two generation tables); refused series cost ~120
bytes each (with a cumulative series' last value) and at most `max_refused_series` are remembered.
Series objects themselves are shared with the rest of the pipeline and not counted; a refused
series, though, is often held by nothing else once the decoders' caches let it go (~0.5 KiB with
its unique label values), so the memory limiter makes the tracker forget refused series when it
releases caches; they are decided again on their next point, as those past `max_refused_series`.

Invariant: the limiter never lets the series it passes exceed a cap within a window, and never
refuses a point of a series it admitted while that series stays active (for `fixed`: within the
current window).
"""

from metricgate.processors.cardinality_limit.config import CardinalityLimitConfig, PerLabelLimit
from metricgate.processors.cardinality_limit.processor import FACTORY, CardinalityLimiter

__all__ = ["FACTORY", "CardinalityLimitConfig", "CardinalityLimiter", "PerLabelLimit"]
