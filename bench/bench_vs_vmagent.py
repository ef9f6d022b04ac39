"""metricgate vs vmagent: remote-write in -> 3 relabel rules -> remote-write out, same sink.

Starts one VictoriaMetrics single-node (tmp storage, free port) as the sink, then, one after the
other on the same machine (so they do not compete for cores):

- vmagent  (`-remoteWrite.relabelConfig` with the 3 rules, `-remoteWrite.label=forwarder=vmagent`);
- metricgate (`prometheus_remote_write` receiver -> `relabel` (the same 3 rules) ->
  `prometheus_remote_write` exporter with `external_labels: {forwarder: metricgate}`).

Each gets the same pre-built remote-write 1.0 requests (N series x R rounds,
`--samples-per-request` samples per request, sorted labels, one increasing timestamp per round)
from a few concurrent aiohttp clients, round after round. The bench waits until the sink has
stored every sample the forwarder should deliver, and reads the forwarder's own
`process_cpu_seconds_total` before the first request and after delivery. Printed: samples/s
accepted, CPU seconds per million samples for each, the metricgate/vmagent ratio, and the series
count the sink holds per `forwarder` label. By default the comparison runs at 500, 2,000 (what
Prometheus sends) and 10,000 samples per request, and the ratios are printed side by side at the
end: a cost per request shows as a ratio that grows as requests shrink.

    .venv/bin/python bench/bench_vs_vmagent.py                     # 100k series x 10 rounds
    .venv/bin/python bench/bench_vs_vmagent.py --samples-per-request 2000 --per-send 2000
    .venv/bin/python bench/bench_vs_vmagent.py --series 20000 --rounds 3 --only metricgate
    .venv/bin/python bench/bench_vs_vmagent.py --churn 0.1 --samples-per-request 2000

With `--churn 0.1`, a tenth of the series is replaced by new ones (a new `id` label) in every
round after the first, as restarting pods and new agent runs do: the later rounds' figures are
then the steady cost under churn, the first sight of series included.

With `--disk-queue`, metricgate's exporter writes every batch to its on-disk queue before it
answers (`sending_queue.storage` with `fsync: batch`): nothing accepted is lost in a crash.
vmagent runs as always (it keeps blocks in memory and spills them to `-remoteWrite.tmpDataPath`
when they pile up).

The three rules: a `replace` (status 2xx -> code_class="2xx"), a `labeldrop` (pod), a `drop`
(route /internal/..., every 10th series). The forwarders should deliver 90 % of the samples.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import aiohttp
import cramjam

from metricgate.wire.remotewrite.schema import WriteRequest

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".cache/debs/root/usr/bin"
METRICS = 100

RULES_YAML = r"""
- source_labels: [status]
  regex: '(\d)\d\d'
  target_label: code_class
  replacement: '${1}xx'
- action: labeldrop
  regex: pod
- action: drop
  source_labels: [route]
  regex: '/internal/.*'
"""

METRICGATE_CONFIG = """
receivers:
  prometheus_remote_write:
    endpoint: "127.0.0.1:{rw}"
    path: /api/v1/write
processors:
  relabel:
    relabel_configs:
{rules}
exporters:
  prometheus_remote_write:
    endpoint: "http://127.0.0.1:{vm}/api/v1/write"
    external_labels: {{forwarder: metricgate}}
    max_samples_per_send: {per_send}
    flush_interval: 1s
    shards: {{min: {shards_min}, max: {shards_max}}}{storage}
service:
  pipelines:
    metrics: {{receivers: [prometheus_remote_write], processors: [relabel],
               exporters: [prometheus_remote_write]}}
  telemetry:
    metrics: {{address: "127.0.0.1:{tel}"}}
    logs: {{level: warning}}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ---------------------------------------------------------------------------------------------
# Requests


def series_labels(series: int) -> list[list[tuple[str, str]]]:
    """Sorted label sets of `series` series: 100 metrics, 6 labels besides `__name__`."""
    per_metric = max(1, series // METRICS)
    out = []
    for m in range(METRICS):
        for i in range(per_metric):
            route = f"/internal/health/{i % 13}" if i % 10 == 0 else f"/api/v1/item/{i % 97}"
            labels = {
                "__name__": f"bench_requests_{m}",
                "id": str(i),
                "instance": f"host-{i % 20}:9100",
                "job": "bench",
                "method": ("GET", "POST", "PUT")[i % 3],
                "pod": f"pod-{i % 50}",
                "route": route,
                "status": str(200 + i % 5),
            }
            out.append(sorted(labels.items()))
    return out


def churned(
    labels: list[list[tuple[str, str]]], round_no: int, churn: float
) -> list[list[tuple[str, str]]]:
    """`labels` as round `round_no` sends them when a `churn` share of the series is replaced
    every round (pods restarting, new agent runs): series i gets a new `id` in each round r >= 1
    with r = i (mod 1/churn), and keeps it until its next renewal."""
    if churn <= 0 or round_no == 0:
        return labels
    period = max(1, round(1 / churn))
    out = []
    for i, label_set in enumerate(labels):
        renewed = round_no - (round_no - i) % period
        if renewed < 1:
            out.append(label_set)
            continue
        out.append([(n, f"{v}.{renewed}" if n == "id" else v) for n, v in label_set])
    return out


def build_round(
    labels: list[list[tuple[str, str]]], per_request: int, timestamp_ms: int, round_no: int
) -> list[bytes]:
    bodies = []
    for start in range(0, len(labels), per_request):
        request = WriteRequest()
        for i, label_set in enumerate(labels[start : start + per_request], start):
            ts = request.timeseries.add()
            for name, value in label_set:
                label = ts.labels.add()
                label.name = name
                label.value = value
            sample = ts.samples.add()
            sample.value = float(round_no * 10 + i % 7)
            sample.timestamp = timestamp_ms
        bodies.append(bytes(cramjam.snappy.compress_raw(request.SerializeToString())))
    return bodies


def expected_series(labels: list[list[tuple[str, str]]]) -> int:
    return sum(1 for ls in labels if not dict(ls)["route"].startswith("/internal/"))


# ---------------------------------------------------------------------------------------------
# Processes and HTTP helpers


class Proc:
    """A subprocess killed by PID on exit (SIGTERM, then SIGKILL)."""

    def __init__(self, name: str, argv: list[str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.popen = subprocess.Popen(
            argv, stdout=self._log, stderr=subprocess.STDOUT, cwd=log_dir, start_new_session=True
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def check(self) -> None:
        if self.popen.poll() is not None:
            tail = self.log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{self.name} exited with {self.popen.returncode}:\n{tail}")

    def stop(self) -> None:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.popen.pid, signal.SIGKILL)
                self.popen.wait(10)
        self._log.close()


def http_get(url: str, timeout: float = 10) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        data: bytes = response.read()
    return data.decode()


def wait_until(what: str, ok: Callable[[], bool], timeout: float, proc: Proc | None = None) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None:
            proc.check()
        try:
            if ok():
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")


def scrape(url: str) -> Iterator[tuple[str, str, float]]:
    """(name, labels, value) of every sample of a text-format page."""
    for line in http_get(url).splitlines():
        if line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if match:
            yield match.group(1), match.group(2) or "", float(match.group(3))


def metric_sum(url: str, name: str, label_filter: str = "") -> float:
    return sum(v for n, lab, v in scrape(url) if n == name and label_filter in lab)


def vm_query(vm: int, query: str, at_ms: int) -> float:
    params = urllib.parse.urlencode({"query": query, "time": f"{at_ms / 1000:.3f}"})
    data = json.loads(http_get(f"http://127.0.0.1:{vm}/api/v1/query?{params}", timeout=60))
    result = data["data"]["result"]
    return float(result[0]["value"][1]) if result else 0.0


def vm_rows(vm: int) -> float:
    """Rows VictoriaMetrics stored (inserted via remote-write, across all forwarders)."""
    return metric_sum(f"http://127.0.0.1:{vm}/metrics", "vm_rows_inserted_total", "promremotewrite")


# ---------------------------------------------------------------------------------------------
# Sending


async def send_round(url: str, bodies: list[bytes], concurrency: int) -> None:
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    headers = {
        "Content-Encoding": "snappy",
        "Content-Type": "application/x-protobuf",
        "X-Prometheus-Remote-Write-Version": "0.1.0",
        "User-Agent": "bench_vs_vmagent/1",
    }
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(timeout=timeout) as session:

        async def worker() -> None:
            while not queue.empty():
                body = queue.get_nowait()
                for _attempt in range(600):
                    async with session.post(url, data=body, headers=headers) as response:
                        text = await response.read()
                        if 200 <= response.status < 300:
                            break
                        if response.status not in (429, 503):
                            raise RuntimeError(f"HTTP {response.status}: {text[:300]!r}")
                        await asyncio.sleep(float(response.headers.get("Retry-After", "0.1")))
                else:
                    raise RuntimeError("request refused for too long")

        await asyncio.gather(*(worker() for _ in range(concurrency)))


def run_forwarder(
    name: str,
    write_url: str,
    cpu: Callable[[], float],
    delivered: Callable[[], float],
    proc: Proc,
    rounds: list[list[bytes]],
    samples_in: int,
    expected_out: int,
    args: argparse.Namespace,
) -> dict[str, float]:
    cpu0 = cpu()
    base = delivered()
    started = time.perf_counter()
    first_round_s = 0.0
    first_cpu = 0.0
    paused = 0.0
    for index, bodies in enumerate(rounds):
        asyncio.run(send_round(write_url, bodies, args.concurrency))
        proc.check()
        if index == 0:
            first_round_s = time.perf_counter() - started
            # CPU of the first sight of every series, once the round is delivered (waiting
            # costs no CPU; its time is left out of the rates).
            pause = time.perf_counter()
            wait_until(
                f"{name} to deliver the first round",
                lambda: delivered() - base >= expected_out // len(rounds),
                args.deliver_timeout,
                proc,
            )
            first_cpu = cpu() - cpu0
            paused = time.perf_counter() - pause
    accepted_s = time.perf_counter() - started - paused
    wait_until(
        f"{name} to deliver {expected_out:,} samples",
        lambda: delivered() - base >= expected_out,
        args.deliver_timeout,
        proc,
    )
    delivered_s = time.perf_counter() - started - paused
    cpu1 = cpu()
    return {
        "first_cpu_s": first_cpu,
        "accepted_s": accepted_s,
        "first_round_s": first_round_s,
        "delivered_s": delivered_s,
        "cpu_s": cpu1 - cpu0,
        "samples": samples_in,
        "delivered": delivered() - base,
    }


# ---------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument(
        "--samples-per-request",
        "--per-request",
        default="500,2000,10000",
        help="samples per request; a comma list runs the comparison once per size and prints "
        "the ratios side by side",
    )
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument(
        "--churn",
        type=float,
        default=0.0,
        help="share of the series replaced by new ones every round after the first (0.1: 10 %%; "
        "the later rounds' figures are then the cost under churn)",
    )
    parser.add_argument(
        "--shards", type=int, default=4, help="metricgate exporter shards (min=max)"
    )
    parser.add_argument("--per-send", type=int, default=10_000, help="max_samples_per_send")
    parser.add_argument("--only", choices=["vmagent", "metricgate"], default=None)
    parser.add_argument(
        "--workers",
        default="1",
        help="metricgate run --workers (own CPU is summed over the workers by its telemetry)",
    )
    parser.add_argument(
        "--disk-queue",
        action="store_true",
        help="metricgate's exporter writes every batch to its on-disk queue before answering "
        "(sending_queue.storage, fsync: batch); vmagent runs as always",
    )
    parser.add_argument("--deliver-timeout", type=float, default=300)
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, configs)")
    parser.add_argument(
        "--profile",
        metavar="FILE",
        help="run metricgate under cProfile and write the stats to FILE (slows it down)",
    )
    args = parser.parse_args()

    for binary in ("victoria-metrics", "vmagent"):
        if not (BIN / binary).exists():
            sys.exit(f"missing {BIN / binary}")
    sizes = [int(size) for size in str(args.samples_per_request).split(",")]
    ratios = {size: compare(args, size) for size in sizes}
    if len(sizes) > 1 and args.only is None:
        print("\n== metricgate/vmagent CPU per sample by request size ==")
        for size, found in ratios.items():
            if found is not None:
                total, first, later = found
                print(
                    f"  {size:>6,} samples per request: {total:.2f}x "
                    f"(first round {first:.2f}x, later rounds {later:.2f}x)"
                )


def compare(args: argparse.Namespace, per_request: int) -> tuple[float, float, float] | None:
    """One comparison with requests of `per_request` samples; the CPU ratios (all, first
    round, later rounds) when both forwarders ran."""
    print(f"\n#### {per_request:,} samples per request", flush=True)
    ratio: tuple[float, float, float] | None = None
    labels = series_labels(args.series)
    n_series = len(labels)
    expected = expected_series(labels)
    step_ms = 15_000
    last_ts = int(time.time() * 1000) - 120_000  # older than VM's -search.latencyOffset
    first_ts = last_ts - (args.rounds - 1) * step_ms
    print(f"building requests: {n_series:,} series x {args.rounds} rounds", flush=True)
    t0 = time.perf_counter()
    rounds = [
        build_round(churned(labels, r, args.churn), per_request, first_ts + r * step_ms, r)
        for r in range(args.rounds)
    ]
    wire = sum(len(b) for b in rounds[0])
    print(
        f"  {len(rounds[0])} requests per round, {wire / 1e6:.2f} MB snappy per round, "
        f"built in {time.perf_counter() - t0:.1f} s; {expected:,} series survive the rules",
        flush=True,
    )
    samples_in = n_series * args.rounds
    expected_out = expected * args.rounds

    tmp = Path(tempfile.mkdtemp(prefix="bench_vs_vmagent_"))
    procs: list[Proc] = []
    results: dict[str, dict[str, float]] = {}
    try:
        (tmp / "rules.yml").write_text(RULES_YAML)
        vm = free_port()
        vm_proc = Proc(
            "victoria-metrics",
            [
                str(BIN / "victoria-metrics"),
                f"-storageDataPath={tmp / 'vmdata'}",
                f"-httpListenAddr=127.0.0.1:{vm}",
                "-retentionPeriod=1y",
                "-search.disableCache",
                "-loggerLevel=WARN",
            ],
            tmp,
        )
        procs.append(vm_proc)
        wait_until(
            "victoria-metrics", lambda: http_get(f"http://127.0.0.1:{vm}/health") != "", 30, vm_proc
        )

        if args.only in (None, "vmagent"):
            port = free_port()
            agent = Proc(
                "vmagent",
                [
                    str(BIN / "vmagent"),
                    f"-remoteWrite.url=http://127.0.0.1:{vm}/api/v1/write",
                    f"-remoteWrite.relabelConfig={tmp / 'rules.yml'}",
                    "-remoteWrite.label=forwarder=vmagent",
                    f"-httpListenAddr=127.0.0.1:{port}",
                    f"-remoteWrite.tmpDataPath={tmp / 'vmagent-data'}",
                    "-loggerLevel=WARN",
                ],
                tmp,
            )
            procs.append(agent)
            metrics_url = f"http://127.0.0.1:{port}/metrics"
            wait_until(
                "vmagent", lambda: http_get(f"http://127.0.0.1:{port}/health") != "", 30, agent
            )
            print("\nvmagent: sending ...", flush=True)
            results["vmagent"] = run_forwarder(
                "vmagent",
                f"http://127.0.0.1:{port}/api/v1/write",
                lambda: metric_sum(metrics_url, "process_cpu_seconds_total"),
                lambda: vm_rows(vm),
                agent,
                rounds,
                samples_in,
                expected_out,
                args,
            )
            agent.stop()

        if args.only in (None, "metricgate"):
            rw, tel = free_port(), free_port()
            rules = "\n".join("      " + line for line in RULES_YAML.strip().splitlines())
            config = tmp / "metricgate.yaml"
            config.write_text(
                METRICGATE_CONFIG.format(
                    rw=rw,
                    vm=vm,
                    tel=tel,
                    rules=rules,
                    per_send=args.per_send,
                    shards_min=args.shards,
                    shards_max=args.shards,
                    storage=(
                        "\n    sending_queue:\n      storage: "
                        f'{{directory: "{tmp / "queue"}", fsync: batch}}'
                        if args.disk_queue
                        else ""
                    ),
                )
            )
            gate = Proc(
                "metricgate",
                [sys.executable]
                + (
                    ["-m", "cProfile", "-o", str(Path(args.profile).resolve())]
                    if args.profile
                    else []
                )
                + ["-m", "metricgate", "run", "--config", str(config)]
                + ["--workers", str(args.workers)],
                tmp,
            )
            procs.append(gate)
            tel_url = f"http://127.0.0.1:{tel}"
            wait_until(
                "metricgate /readyz", lambda: http_get(f"{tel_url}/readyz") is not None, 60, gate
            )
            print("\nmetricgate: sending ...", flush=True)
            results["metricgate"] = run_forwarder(
                "metricgate",
                f"http://127.0.0.1:{rw}/api/v1/write",
                lambda: metric_sum(f"{tel_url}/metrics", "process_cpu_seconds_total"),
                lambda: vm_rows(vm),
                gate,
                rounds,
                samples_in,
                expected_out,
                args,
            )
            results["metricgate"]["own_sent"] = metric_sum(
                f"{tel_url}/metrics", "metricgate_exporter_sent_points_total"
            )
            gate.stop()

        # The sink: series per forwarder at the last round's timestamp.
        with contextlib.suppress(OSError):
            http_get(f"http://127.0.0.1:{vm}/internal/force_flush")
        time.sleep(1)
        print(
            f"\n== remote-write -> 3 relabel rules -> remote-write, {n_series:,} series x "
            f"{args.rounds} rounds ({samples_in:,} samples in, {expected_out:,} expected out) =="
        )
        # Only series with a sample of the last round (with churn, replaced series still have
        # older samples within the query's look-back).
        since = (last_ts - step_ms // 2) / 1000

        def count(matchers: str) -> float:
            return vm_query(vm, f"count(timestamp({{{matchers}}}) > {since:.3f})", last_ts)

        for name, r in results.items():
            series = count(f'forwarder="{name}"')
            with_pod = count(f'forwarder="{name}", pod!=""')
            with_class = count(f'forwarder="{name}", code_class="2xx"')
            dropped = count(f'forwarder="{name}", route=~"/internal/.*"')
            ok = series == expected and with_pod == 0 and with_class == expected and dropped == 0
            print(f"\n{name}:")
            print(
                f"  accepted        : {r['samples']:,} samples in {r['accepted_s']:.2f} s = "
                f"{r['samples'] / r['accepted_s']:,.0f} samples/s"
            )
            print(
                f"  delivered       : {r['delivered']:,.0f} samples stored by the sink after "
                f"{r['delivered_s']:.2f} s ({expected_out / r['delivered_s']:,.0f} samples/s)"
            )
            if len(rounds) > 1:
                per_round = r["samples"] / len(rounds)
                steady = (r["samples"] - per_round) / max(
                    1e-9, r["accepted_s"] - r["first_round_s"]
                )
                print(
                    f"  by round        : first (new series) {per_round / r['first_round_s']:,.0f} "
                    f"samples/s, later rounds {steady:,.0f} samples/s"
                )
            if "own_sent" in r:
                print(f"  own sent counter: {r['own_sent']:,.0f} points (= samples: gauges)")
            print(
                f"  CPU             : {r['cpu_s']:.2f} s = "
                f"{r['cpu_s'] / r['samples'] * 1e6:.2f} CPU s per million samples (in)"
            )
            if len(rounds) > 1:
                per_round = r["samples"] / len(rounds)
                later = (r["cpu_s"] - r["first_cpu_s"]) / (r["samples"] - per_round) * 1e6
                print(
                    f"  CPU by round    : first {r['first_cpu_s'] / per_round * 1e6:.2f}, later "
                    f"rounds {later:.2f} CPU s per million samples"
                )
            print(
                f"  sink            : {series:,.0f} series (expected {expected:,}), "
                f"code_class=2xx on {with_class:,.0f}, pod on {with_pod:,.0f}, "
                f"dropped routes {dropped:,.0f} -> {'OK' if ok else 'MISMATCH'}"
            )
        if len(results) == 2:
            m, v = results["metricgate"], results["vmagent"]
            rate = (m["samples"] / m["accepted_s"]) / (v["samples"] / v["accepted_s"])
            first = m["first_cpu_s"] / max(v["first_cpu_s"], 1e-9)
            later = (m["cpu_s"] - m["first_cpu_s"]) / max(v["cpu_s"] - v["first_cpu_s"], 1e-9)
            ratio = (m["cpu_s"] / v["cpu_s"], first, later)
            print(
                f"\nratio metricgate/vmagent: CPU per sample {m['cpu_s'] / v['cpu_s']:.2f}x "
                f"(first round {first:.2f}x, later rounds {later:.2f}x), "
                f"accept rate {rate:.2f}x, "
                f"end-to-end time {m['delivered_s'] / v['delivered_s']:.2f}x"
            )
    finally:
        for proc in reversed(procs):
            proc.stop()
        if args.keep:
            print(f"\nkept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return ratio


if __name__ == "__main__":
    main()
