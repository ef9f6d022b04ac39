"""The aggregate processor against a real Prometheus, used as an oracle.

The same sample streams (two counters, one with a reset, and a third that appears midway at 0; two
gauges plus a late one; two classic histograms, one with a reset) go (a) raw into Prometheus, via
`promtool tsdb create-blocks-from openmetrics`, and (b) through the processor with an injected
clock, one batch per sample time. Each aggregation window's outputs are compared with PromQL at
the window's sample times:

| output                | PromQL (window [W, W+60s), samples at W+0/15/30/45s)                    |
|-----------------------|--------------------------------------------------------------------------|
| increase, rate_sum    | `sum(increase(c_total[60s]))`, `sum(rate(c_total[60s]))` @ W+45s         |
| total                 | `sum(increase(c_total[<since first sample>]))` @ W+45s                   |
| sum/count_samples,max | `sum(sum_over_time(g[59s]))`, `sum(count_over_time(..))`, `max(max_..)`  |
|                       | @ W+59s                                                                  |
| quantiles(phi)        | `quantile_over_time(phi, g[59s])` @ W+59s, per input series             |
| histogram total/incr. | `sum by (le) (increase(h_bucket[..]))`, `h_count`, `h_sum`, as counters  |

Every range starts exactly on a sample (the one before the window, or the first ever), ends on
one, and the series that appears midway starts at 0, so Prometheus' extrapolation adds nothing
and the results must agree up to float rounding (relative 1e-9). The first window is 45s long
(the first samples are baselines), so its counter queries use 45s ranges. Prometheus 2.x ranges
include their start; the window of sample-wise outputs is therefore queried as `[59s]` at W+59s.
"""

from __future__ import annotations

import json
import random
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from metricgate.model import INTERNER as I
from metricgate.model import Batch, HistogramPoint, MetricKind, MetricPoints, PointValue
from tests.support.aggregate import BASE, NS, hist, make, native
from tests.support.binaries import require_binary
from tests.support.ports import free_port
from tests.support.processes import running_process

pytestmark = pytest.mark.integration

WINDOWS = 6
STEP = 15
TIMES = [BASE + STEP * j for j in range(4 * WINDOWS)]
NEW_AT = 11  # index of the sample time (window 2, +45s) where series "n" appears
RESET_AT = 13  # index where series "b" restarts
LE = (0.1, 0.5, 1.0)


Histograms = dict[str, list[tuple[tuple[int, ...], float]]]


def _streams() -> tuple[dict[str, list[float | None]], dict[str, list[float | None]], Histograms]:
    rng = random.Random(7)
    counters: dict[str, list[float | None]] = {}
    gauges: dict[str, list[float | None]] = {}
    for key in ("a", "b", "n"):
        value, values = 0.0, []
        for j in range(len(TIMES)):
            if (key == "b" and j == RESET_AT) or (key == "n" and j <= NEW_AT):
                value = 0.0  # b restarts from 0; n is born at 0
            value += rng.randint(1, 20) if not (key == "n" and j <= NEW_AT) else 0
            values.append(None if key == "n" and j < NEW_AT else value)
        counters[key] = values
        gauges[key] = [
            None if key == "n" and j < NEW_AT else round(rng.uniform(-5, 10), 2)
            for j in range(len(TIMES))
        ]
    histograms: Histograms = {}
    for key in ("a", "b"):
        counts, total, points = [0] * (len(LE) + 1), 0.0, []
        for j in range(len(TIMES)):
            if key == "b" and j == RESET_AT:
                counts, total = [0] * (len(LE) + 1), 0.0
            counts = [c + rng.randint(1, 4) for c in counts]
            total += round(rng.uniform(0.5, 3), 3)
            points.append((tuple(counts), total))
        histograms[key] = points
    return counters, gauges, histograms


COUNTERS, GAUGES, HISTOGRAMS = _streams()


def _openmetrics() -> str:
    lines = ["# TYPE c counter"]
    for key, values in COUNTERS.items():
        lines += [
            f'c_total{{k="{key}"}} {v} {t}'
            for t, v in zip(TIMES, values, strict=True)
            if v is not None
        ]
    lines.append("# TYPE g gauge")
    for key, values in GAUGES.items():
        lines += [
            f'g{{k="{key}"}} {v} {t}' for t, v in zip(TIMES, values, strict=True) if v is not None
        ]
    lines.append("# TYPE h histogram")
    for key, points in HISTOGRAMS.items():
        for t, (counts, total) in zip(TIMES, points, strict=True):
            running = 0
            for le, count in zip([*map(str, LE), "+Inf"], counts, strict=True):
                running += count
                lines.append(f'h_bucket{{k="{key}",le="{le}"}} {running} {t}')
            lines += [f'h_count{{k="{key}"}} {running} {t}', f'h_sum{{k="{key}"}} {total} {t}']
    return "\n".join([*lines, "# EOF", ""])


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url

    def query(self, expr: str, at: float) -> list[tuple[dict[str, str], float]]:
        query = urllib.parse.urlencode({"query": expr, "time": f"{at:.3f}"})
        with urllib.request.urlopen(f"{self.url}/api/v1/query?{query}", timeout=10) as reply:
            body = json.load(reply)
        assert body["status"] == "success", body
        return [(r["metric"], float(r["value"][1])) for r in body["data"]["result"]]

    def scalar(self, expr: str, at: float) -> float:
        (result,) = self.query(expr, at)
        return result[1]


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    promtool, binary = require_binary("promtool"), require_binary("prometheus")
    root = tmp_path_factory.mktemp("prometheus")
    (root / "input.om").write_text(_openmetrics())
    data = root / "data"
    subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", str(root / "input.om"), str(data)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    (root / "prometheus.yml").write_text("global: {scrape_interval: 15s}\nscrape_configs: []\n")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [
        binary,
        f"--config.file={root / 'prometheus.yml'}",
        f"--storage.tsdb.path={data}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    with running_process("prometheus", argv, root / "prometheus.log", f"{url}/-/ready"):
        yield Prometheus(url)


RULES = """
- {match: c_total, interval: 1m, without: [k], outputs: [total, increase, rate_sum]}
- {match: g, interval: 1m, without: [k], outputs: [sum_samples, count_samples, max]}
- {match: g, interval: 1m, outputs: ['quantiles(0.5, 0.9)']}
- {match: h, interval: 1m, without: [k], outputs: [total, increase]}
"""


Outputs = dict[tuple[str, tuple[tuple[str, Any], ...]], PointValue]


async def _aggregate() -> dict[int, Outputs]:
    """Run the streams through the processor; outputs per window index."""
    processor, sink, clock = make(RULES, start=BASE + 0.5)
    c, g, h = native("c_total"), native("g", MetricKind.GAUGE), native("h", MetricKind.HISTOGRAM)
    outputs: dict[int, Outputs] = {}
    for j, t in enumerate(TIMES):
        clock.t = t + 1
        batch = Batch([MetricPoints(c), MetricPoints(g), MetricPoints(h)])
        for key in ("a", "b", "n"):
            labels = (("k", key),)
            for group, value in (
                (batch.metrics[0], COUNTERS[key][j]),
                (batch.metrics[1], GAUGES[key][j]),
            ):
                if value is not None:
                    group.append(I.intern_series(group.metric, labels), value, t * NS)
            if key in HISTOGRAMS:
                counts, total = HISTOGRAMS[key][j]
                series = I.intern_series(h, labels)
                batch.metrics[2].append(series, hist(counts, total, LE), t * NS)
        await processor.consume(batch)
        if j % 4 == 3:
            window = j // 4
            await processor.flush(BASE + 60 * (window + 1) + 0.5)
            outputs[window] = sink.values()
    return outputs


def _check(got: PointValue, want: float, *context: object) -> None:
    assert isinstance(got, float), (context, got)
    assert abs(got - want) <= 1e-9 * max(1.0, abs(got), abs(want)), (context, got, want)


async def test_outputs_agree_with_promql(prometheus: Prometheus) -> None:
    outputs = await _aggregate()
    assert sorted(outputs) == list(range(WINDOWS))
    for window, got in outputs.items():
        start = BASE + 60 * window
        last, end = start + 45, start + 59
        span = "60s" if window else "45s"
        since = f"{last - BASE}s"
        for name, expr, at in (
            ("c_total:1m_without_k_increase", f"sum(increase(c_total[{span}]))", last),
            ("c_total:1m_without_k_rate_sum", f"sum(rate(c_total[{span}]))", last),
            ("c_total:1m_without_k_total", f"sum(increase(c_total[{since}]))", last),
            ("g:1m_without_k_sum_samples", "sum(sum_over_time(g[59s]))", end),
            ("g:1m_without_k_count_samples", "sum(count_over_time(g[59s]))", end),
            ("g:1m_without_k_max", "max(max_over_time(g[59s]))", end),
        ):
            _check(got[(name, ())], prometheus.scalar(expr, at), window, name)
        for phi in ("0.5", "0.9"):
            per_series = prometheus.query(f"quantile_over_time({phi}, g[59s])", end)
            assert len(per_series) == (2 if window < 2 else 3)
            for labels, want in per_series:
                key = ("g:1m_quantiles", (("k", labels["k"]), ("quantile", phi)))
                _check(got[key], want, window, key)
        for output, span_or_since in (("total", since), ("increase", span)):
            merged = got[(f"h:1m_without_k_{output}", ())]
            assert isinstance(merged, HistogramPoint)
            query = f"sum by (le) (increase(h_bucket[{span_or_since}]))"
            buckets = {labels["le"]: value for labels, value in prometheus.query(query, last)}
            running = 0.0
            for le, count in zip([*map(str, LE), "+Inf"], merged.bucket_counts, strict=True):
                running += count
                _check(running, buckets[le], window, output, le)
            for field, value in (("count", float(merged.count)), ("sum", merged.sum or 0.0)):
                want = prometheus.scalar(f"sum(increase(h_{field}[{span_or_since}]))", last)
                _check(value, want, window, output, field)
