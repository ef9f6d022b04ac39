"""The scrape data path in one process, without the network: CPU per scraped sample.

Each of N targets (its own `ScrapeLoop`, parsers and converter, as in the receiver) scrapes the
page of `bench_scrape.py` (text 0.0.4, 60 % counters, 20 % gauges, 20 % histogram lines) from
memory; the scrapes go through the receiver's `Coalescer` into the remote-write `Encoder` and each
fragment is snappy-compressed, as the exporter does before sending. Printed: CPU microseconds per
scraped sample for the first scrape of every target (first sight of its series) and for steady
rounds, the median of `--repeat` passes.

- `--vary` (default): every round's page has new values (counters move, as on real targets);
- `--static`: every round serves byte-identical pages (as `bench_scrape.py`'s page server does).

    .venv/bin/python bench/bench_scrape_path.py                    # 200 targets x 500, 6 rounds
    .venv/bin/python bench/bench_scrape_path.py --targets 1000 --static
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import time
from pathlib import Path

import cramjam

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_scrape import render_page
from metricgate.exporters.prometheus_remote_write.config import (
    RemoteWriteExporterConfig,
)
from metricgate.exporters.prometheus_remote_write.encoder import Encoder
from metricgate.model import Batch
from metricgate.receivers.prometheus.config import ScrapeConfig
from metricgate.receivers.prometheus.deliver import Coalescer
from metricgate.receivers.prometheus.scrape import JobContext, ScrapeLoop
from metricgate.receivers.prometheus.targets import Target
from metricgate.relabel import RuleSet
from metricgate.wire.exposition import Page, TextParser


def pages(samples: int, rounds: int, vary: bool) -> list[str]:
    """One page per round: the same text, or the same series with every value moved by the
    round number."""
    page = render_page(samples).decode()
    if not vary:
        return [page] * rounds
    lines = page.split("\n")
    out = []
    for number in range(rounds):
        moved = []
        for line in lines:
            if line and not line.startswith("#"):
                head, _, value = line.rpartition(" ")
                line = f"{head} {float(value) + number:g}"
            moved.append(line)
        out.append("\n".join(moved))
    return out


class MemoryLoop(ScrapeLoop):
    """A scrape loop whose target answers from memory."""

    page = ""

    async def _fetch(self) -> Page:
        parser = self._parsers.get("text")
        if parser is None:
            parser = self._parsers["text"] = TextParser()
        return parser.parse(self.page)


class Sink:
    """The remote-write exporter's work up to the socket: encode, join, compress."""

    def __init__(self) -> None:
        config = RemoteWriteExporterConfig(
            endpoint="http://127.0.0.1:1/api/v1/write", external_labels={"agent": "metricgate"}
        )
        self.encoder = Encoder(
            config.translator(), external_labels=config.external_labels, max_samples=2000
        )

    async def consume(self, batch: Batch) -> None:
        per_lane, _ = self.encoder.encode(batch, 1, time.monotonic())
        for fragments in per_lane:
            for fragment in fragments:
                cramjam.snappy.compress_raw(fragment.data)


async def run(targets: int, rounds: int, texts: list[str]) -> tuple[float, float, int]:
    """(first-scrape us per sample, steady us per sample, samples per page)."""
    job = ScrapeConfig(job_name="bench")
    context = JobContext(
        "prometheus",
        None,  # type: ignore[arg-type]  # no session: pages come from memory
        Coalescer(Sink(), delay=0.0),
        RuleSet([]),
        job,
        1 << 30,
        lambda job, reason, points: None,
    )
    loops = [
        MemoryLoop(
            Target(
                "bench",
                (("instance", f"127.0.{1 + i // 250}.{1 + i % 250}:9100"), ("job", "bench")),
                (),
                f"http://target-{i}/metrics",
                15.0,
                15.0,
                f"{i:016x}",
            ),
            context,
            set(),
        )
        for i in range(targets)
    ]
    start = time.time()
    figures = []
    per_page = 0
    for number in range(rounds + 1):
        for loop in loops:
            loop.page = texts[number]
        began = time.process_time()
        await asyncio.gather(*(loop.scrape(start + 15 * number) for loop in loops))
        figures.append(time.process_time() - began)
        per_page = loops[0].health.samples
    samples = targets * per_page
    return figures[0] / samples * 1e6, sum(figures[1:]) / (rounds * samples) * 1e6, per_page


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--targets", type=int, default=200)
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--static", action="store_true", help="byte-identical pages every round")
    args = parser.parse_args()
    gc.set_threshold(50_000, 50, 100)  # as `metricgate run` sets it
    texts = pages(args.samples, args.rounds + 1, not args.static)
    first, steady = [], []
    per_page = 0
    for _ in range(args.repeat):
        cold, warm, per_page = asyncio.run(run(args.targets, args.rounds, texts))
        first.append(cold)
        steady.append(warm)
    kind = "static" if args.static else "varying"
    print(
        f"{args.targets} targets x {per_page} samples, {args.rounds} rounds, {kind} pages: "
        f"first scrape {first[0]:.2f} us/sample, "
        f"steady {statistics.median(steady):.2f} us/sample "
        f"(runs: {', '.join(f'{s:.2f}' for s in steady)})"
    )


if __name__ == "__main__":
    main()
