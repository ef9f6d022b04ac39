"""Remote-write forwarding, stage by stage in one process: decode -> relabel -> encode -> snappy.

The same requests as `bench_vs_vmagent.py` (100 metrics, 8 labels, ~10k samples per request, the
same 3 relabel rules), through the receiver's decoder, the `relabel` processor and the remote-write
exporter's encoder, without HTTP. Prints CPU microseconds per sample for each stage, for the first
sight of every series (cold) and for known series (steady, best of the rounds), so the cost of the
whole forwarder (`bench_vs_vmagent.py`) can be traced to a stage.

    .venv/bin/python bench/bench_forward.py                    # 100k series
    .venv/bin/python bench/bench_forward.py --series 20000 --rounds 5
    .venv/bin/python bench/bench_forward.py --churn 0.1 --per-request 2000 --rounds 6

With `--churn`, the later rounds' column is the cost per sample while that share of the series
is new every round (best of the rounds).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import resource
import sys
import time
from pathlib import Path
from typing import Any

import cramjam
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_vs_vmagent import RULES_YAML, build_round, churned, series_labels
from metricgate.exporters.prometheus_remote_write import Encoder
from metricgate.model import Batch
from metricgate.processors.relabel.config import RelabelConfig
from metricgate.processors.relabel.processor import RelabelProcessor
from metricgate.receivers.prometheus_remote_write.decode import RemoteWriteDecoder
from metricgate.translate import PrometheusTranslator


class Keep:
    """The processor's next consumer: keeps what it gets."""

    def __init__(self) -> None:
        self.batches: list[Batch] = []

    async def consume(self, batch: Batch) -> None:
        self.batches.append(batch)


async def one_round(
    bodies: list[bytes],
    decoder: RemoteWriteDecoder,
    relabel: RelabelProcessor,
    keep: Keep,
    encoder: Encoder,
    shards: int,
) -> dict[str, float]:
    spent = dict.fromkeys(("unsnappy", "decode", "relabel", "encode", "snappy"), 0.0)
    clock = time.process_time
    for body in bodies:
        t0 = clock()
        raw = bytes(cramjam.snappy.decompress_raw(body))
        t1 = clock()
        result = decoder.decode_v1(raw)
        t2 = clock()
        keep.batches.clear()
        await relabel.consume(result.batch)
        t3 = clock()
        fragments: list[Any] = []
        for batch in keep.batches:
            per_shard, _ = encoder.encode(batch, shards, time.monotonic())
            fragments.extend(f for shard in per_shard for f in shard)
        t4 = clock()
        for fragment in fragments:
            cramjam.snappy.compress_raw(fragment.data)
        t5 = clock()
        for stage, spent_s in zip(
            spent, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4), strict=True
        ):
            spent[stage] += spent_s
    return spent


async def run(args: argparse.Namespace) -> None:
    labels = series_labels(args.series)
    rounds = [
        build_round(
            churned(labels, r, args.churn), args.per_request, 1_700_000_000_000 + r * 15_000, r
        )
        for r in range(args.rounds)
    ]
    samples = len(labels)
    decoder = RemoteWriteDecoder()
    keep = Keep()
    config = RelabelConfig.model_validate({"relabel_configs": yaml.safe_load(RULES_YAML)})
    relabel = RelabelProcessor("relabel", config, keep)
    encoder = Encoder(
        PrometheusTranslator(),
        external_labels={"forwarder": "metricgate"},
        max_samples=args.per_send,
    )
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)  # what `metricgate run` does
    results = [
        await one_round(bodies, decoder, relabel, keep, encoder, args.shards) for bodies in rounds
    ]
    cold, steady = results[0], results[1:]
    later = "churn" if args.churn else "steady"
    print(
        f"{samples:,} series x {args.rounds} rounds"
        + (f", {args.churn:.0%} new series per round after the first" if args.churn else "")
        + "; CPU microseconds per sample in"
    )
    print(f"  {'stage':<10} {'cold':>8} {later:>8}")
    for stage in cold:
        best = min(r[stage] for r in steady)
        print(f"  {stage:<10} {cold[stage] / samples * 1e6:>8.2f} {best / samples * 1e6:>8.2f}")
    total_cold = sum(cold.values())
    total = min(sum(r.values()) for r in steady)
    print(f"  {'total':<10} {total_cold / samples * 1e6:>8.2f} {total / samples * 1e6:>8.2f}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:,.0f} MiB (the prepared requests included)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--per-request", type=int, default=10_000)
    parser.add_argument("--per-send", type=int, default=10_000)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument(
        "--churn",
        type=float,
        default=0.0,
        help="share of the series replaced every round after the first (as bench_vs_vmagent)",
    )
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
