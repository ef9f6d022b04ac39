"""End-to-end throughput of one metricgate process on its default pipeline.

Starts `metricgate run` (OTLP in, Prometheus endpoint out) on free ports, sends pre-built OTLP
requests (protobuf over HTTP, and over gRPC) covering N series for R rounds, then prints:
data points/s accepted, gateway CPU seconds per million points, peak RSS, bytes per active series,
and the time to render the scrape page.

    .venv/bin/python bench/bench_gateway.py                    # 100k series, 10 rounds
    .venv/bin/python bench/bench_gateway.py --series 1000000 --rounds 2 --transport http
    .venv/bin/python bench/bench_gateway.py --sdk-clients      # 200-point requests, 50 clients
    .venv/bin/python bench/bench_gateway.py --transport http --workers 2   # two worker processes
    .venv/bin/python bench/bench_gateway.py --sdk-clients --churn 0.1  # a tenth new every round

Client and gateway share the machine's cores; the gateway's own CPU time (from /proc) is the figure
that does not depend on the client. It is also printed for the first round (every series new) and
the later rounds (known series) apart: with 50k series x 10 rounds the first round is most of the
total, so a change in the cost of a request shows in the second figure far more than in the total.

`--sdk-clients` is the load of OpenTelemetry SDKs: each process exports a few hundred points per
interval in a request of its own, so it sends 200-point requests over OTLP/HTTP from 50 concurrent
clients (one connection each).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import grpc
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    AGGREGATION_TEMPORALITY_CUMULATIVE,
    Metric,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

CONFIG = """
receivers:
  otlp:
    protocols:
      grpc: {{endpoint: "127.0.0.1:{grpc}"}}
      http: {{endpoint: "127.0.0.1:{http}"}}
exporters:
  prometheus: {{endpoint: "127.0.0.1:{prom}"}}
{processors_section}
service:
  pipelines:
    metrics: {{receivers: [otlp], processors: [{processor_ids}], exporters: [prometheus]}}
  telemetry:
    metrics: {{address: "127.0.0.1:{tel}"}}
    logs: {{level: warning}}
"""


PROCESSORS = """
processors:
  relabel:
    relabel_configs:
      - {source_labels: [status], regex: '(\\d)\\d\\d', target_label: code_class,
         replacement: '${1}xx'}
      - {action: labeldrop, regex: 'otel_scope_.*'}
      - {action: labelmap, regex: 'tenant_(id)', replacement: 'tenant_$1'}
      - {action: hashmod, source_labels: [series], modulus: 8, target_label: shard}
      - {action: lowercase, source_labels: [method], target_label: method}
      - {source_labels: [__name__], regex: '(.*)_total', target_label: __name__,
         replacement: '${1}_n'}
      - {target_label: region, replacement: eu-west-1}
      - {action: keep, source_labels: [__name__], regex: 'bench_.*'}
      - {source_labels: [route], regex: '/api/(v[0-9]+)/.*', target_label: api_version}
      - {action: labeldrop, regex: 'shard'}
  cardinality_limit: {max_series: 10000000, max_series_per_metric: 1000000}
  aggregate:
    rules:
      - {match: bench_requests_1_n, interval: 1m, without: [series], outputs: [total, rate_sum],
         keep_input: true}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def build_requests(series: int, per_request: int, round_no: int, churn: float = 0.0) -> list[bytes]:
    """Serialized requests covering `series` series (100 metrics, 5 attributes each); with
    `churn`, that share of each metric's series is new in every round after the first."""
    metrics = 100
    per_metric = max(1, series // metrics)
    churned = int(per_metric * churn)
    now = time.time_ns()
    start = now - 60_000_000_000
    bodies: list[bytes] = []
    request = ExportMetricsServiceRequest()
    count = 0

    def new_scope() -> ScopeMetrics:
        rm = request.resource_metrics.add()
        rm.CopyFrom(
            ResourceMetrics(
                resource=Resource(
                    attributes=[
                        KeyValue(key="service.name", value=AnyValue(string_value="bench")),
                        KeyValue(key="service.instance.id", value=AnyValue(string_value="bench-1")),
                    ]
                )
            )
        )
        scope = rm.scope_metrics.add()
        scope.scope.name = "bench"
        return scope

    scope = new_scope()
    for m in range(metrics):
        metric = Metric(name=f"bench.requests.{m}", unit="{request}")
        metric.sum.CopyFrom(
            Sum(aggregation_temporality=AGGREGATION_TEMPORALITY_CUMULATIVE, is_monotonic=True)
        )
        for s in range(per_metric):
            point = NumberDataPoint(
                start_time_unix_nano=start,
                time_unix_nano=now,
                as_double=float(round_no * 10 + s % 7),
                attributes=[
                    KeyValue(key="route", value=AnyValue(string_value=f"/api/v1/item/{s % 97}")),
                    KeyValue(key="method", value=AnyValue(string_value="GET")),
                    KeyValue(key="status", value=AnyValue(string_value=str(200 + s % 5))),
                    KeyValue(key="tenant", value=AnyValue(string_value=f"t{s // 97}")),
                    KeyValue(
                        key="series",
                        value=AnyValue(int_value=s + round_no * per_metric if s < churned else s),
                    ),
                ],
            )
            metric.sum.data_points.append(point)
            count += 1
            if count % per_request == 0:
                scope.metrics.append(metric)
                bodies.append(request.SerializeToString())
                request = ExportMetricsServiceRequest()
                scope = new_scope()
                metric = Metric(name=f"bench.requests.{m}", unit="{request}")
                metric.sum.CopyFrom(
                    Sum(
                        aggregation_temporality=AGGREGATION_TEMPORALITY_CUMULATIVE,
                        is_monotonic=True,
                    )
                )
        if metric.sum.data_points:
            scope.metrics.append(metric)
    if request.resource_metrics[0].scope_metrics[0].metrics:
        bodies.append(request.SerializeToString())
    return bodies


def proc_stat(pid: int) -> tuple[float, int, int]:
    """(cpu seconds, rss bytes, peak rss bytes) of a process and its children (the workers of
    `run --workers N`), summed."""
    total = [0.0, 0, 0]
    for member in [pid, *children(pid)]:
        for i, value in enumerate(one_stat(member)):
            total[i] += value
    return total[0], int(total[1]), int(total[2])


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def one_stat(pid: int) -> tuple[float, int, int]:
    """(cpu seconds, rss bytes, peak rss bytes) of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    status = Path(f"/proc/{pid}/status").read_text()
    values = {
        line.split(":")[0]: line.split()[1] for line in status.splitlines() if len(line.split()) > 1
    }
    return cpu, int(values["VmRSS"]) * 1024, int(values["VmHWM"]) * 1024


class HttpClients:
    """`concurrency` clients, each with one kept-alive connection for the whole run, client k
    sending requests k, k + concurrency, ... of every round: as SDK processes do, each exporting
    its own series over its own connection (so under `--workers N` a client stays with the
    worker the kernel gave its connection)."""

    def __init__(self, port: int, concurrency: int) -> None:
        self.url = f"http://127.0.0.1:{port}/v1/metrics"
        self.sessions = [
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1))
            for _ in range(concurrency)
        ]

    async def send(self, bodies: list[bytes]) -> None:
        count = len(self.sessions)
        await asyncio.gather(
            *(self._client(session, bodies[k::count]) for k, session in enumerate(self.sessions))
        )

    async def _client(self, session: aiohttp.ClientSession, bodies: list[bytes]) -> None:
        for body in bodies:
            while True:
                async with session.post(
                    self.url, data=body, headers={"Content-Type": "application/x-protobuf"}
                ) as response:
                    await response.read()
                    if response.status == 200:
                        break
                    if response.status not in (429, 503):
                        raise RuntimeError(f"HTTP {response.status}")
                    await asyncio.sleep(float(response.headers.get("Retry-After", "0.1")))

    async def close(self) -> None:
        for session in self.sessions:
            await session.close()


async def send_grpc(port: int, bodies: list[bytes], concurrency: int) -> None:
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    async with grpc.aio.insecure_channel(
        f"127.0.0.1:{port}", options=[("grpc.max_send_message_length", 64 << 20)]
    ) as channel:
        export = channel.unary_unary(
            "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
            request_serializer=None,
            response_deserializer=None,
        )

        async def worker() -> None:
            while not queue.empty():
                body = queue.get_nowait()
                while True:
                    try:
                        await export(body)
                        break
                    except grpc.aio.AioRpcError as exc:
                        if exc.code() not in (
                            grpc.StatusCode.RESOURCE_EXHAUSTED,
                            grpc.StatusCode.UNAVAILABLE,
                        ):
                            raise
                        await asyncio.sleep(0.1)

        await asyncio.gather(*(worker() for _ in range(concurrency)))


def time_scrape(port: int) -> tuple[float, int]:
    import urllib.request

    started = time.perf_counter()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=120) as response:
        size = len(response.read())
    return time.perf_counter() - started, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--per-request", type=int, default=10_000, help="points per request")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--transport", choices=["http", "grpc", "both"], default="both")
    parser.add_argument(
        "--sdk-clients",
        action="store_true",
        help="the load of OpenTelemetry SDKs: --transport http --per-request 200 --concurrency 50",
    )
    parser.add_argument(
        "--processors",
        action="store_true",
        help="add relabel (10 rules) -> cardinality_limit -> aggregate (1 rule) to the pipeline",
    )
    parser.add_argument(
        "--workers", default="1", help="metricgate run --workers (CPU and RSS summed over them)"
    )
    parser.add_argument(
        "--churn",
        type=float,
        default=0.0,
        help="share of the series that is new in every round after the first (0.1: a tenth)",
    )
    args = parser.parse_args()
    if args.sdk_clients:
        args.transport, args.per_request, args.concurrency = "http", 200, 50

    print(f"building requests: {args.series:,} series x {args.rounds} rounds", flush=True)
    rounds = [
        build_requests(args.series, args.per_request, r, args.churn) for r in range(args.rounds)
    ]
    if args.churn:
        print(f"  churn: {args.churn:.0%} of the series are new in every later round")
    wire = sum(len(b) for b in rounds[0])
    print(f"  {len(rounds[0])} requests per round, {wire / 1e6:.1f} MB per round")

    transports = ["http", "grpc"] if args.transport == "both" else [args.transport]
    for transport in transports:
        ports = {"grpc": free_port(), "http": free_port(), "prom": free_port(), "tel": free_port()}
        with tempfile.TemporaryDirectory() as tmp:
            config = Path(tmp) / "bench.yaml"
            config.write_text(
                CONFIG.format(
                    **ports,
                    processors_section=PROCESSORS if args.processors else "",
                    processor_ids="relabel, cardinality_limit, aggregate"
                    if args.processors
                    else "",
                )
            )
            process = subprocess.Popen(
                [
                    *(sys.executable, "-m", "metricgate", "run", "--config", str(config)),
                    *("--workers", str(args.workers)),
                ]
            )
            try:
                run_one(transport, process.pid, ports, rounds, args)
            finally:
                process.send_signal(signal.SIGTERM)
                process.wait(60)


async def _http_clients(port: int, concurrency: int) -> HttpClients:
    return HttpClients(port, concurrency)


def run_one(
    transport: str,
    pid: int,
    ports: dict[str, int],
    rounds: list[list[bytes]],
    args: argparse.Namespace,
) -> None:
    import urllib.request

    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{ports['tel']}/readyz", timeout=1)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    cpu0, rss0, _ = proc_stat(pid)
    client0 = time.process_time()
    port = ports["http"] if transport == "http" else ports["grpc"]
    loop = asyncio.Runner()
    if transport == "http":
        clients = loop.run(_http_clients(port, args.concurrency))

        def send_round(bodies: list[bytes]) -> None:
            loop.run(clients.send(bodies))
    else:

        def send_round(bodies: list[bytes]) -> None:
            loop.run(send_grpc(port, bodies, args.concurrency))

    points = 0
    first_round_s = 0.0
    started = time.perf_counter()
    for index, bodies in enumerate(rounds):
        round_started = time.perf_counter()
        send_round(bodies)
        if index == 0:
            first_round_s = time.perf_counter() - round_started
            cpu_first = proc_stat(pid)[0] - cpu0
        points += args.series
    elapsed = time.perf_counter() - started
    if transport == "http":
        loop.run(clients.close())
    loop.close()
    cpu1, rss1, peak = proc_stat(pid)
    client_cpu = time.process_time() - client0
    time.sleep(0.5)  # let the exporter queue drain before scraping
    scrape_s, scrape_bytes = time_scrape(ports["prom"])
    scrape2_s, _ = time_scrape(ports["prom"])
    steady = (points - args.series) / max(1e-9, elapsed - first_round_s) if len(rounds) > 1 else 0
    chain = " -> relabel -> cardinality_limit -> aggregate" if args.processors else ""
    print(f"\n== OTLP/{transport} protobuf{chain} -> prometheus exporter ==")
    print(
        f"requests              : {args.per_request:,} points each, "
        f"{args.concurrency} concurrent clients"
    )
    print(f"points accepted       : {points:,} in {elapsed:.2f} s")
    print(
        f"throughput            : {points / elapsed:,.0f} points/s overall, "
        f"{steady:,.0f} points/s after the first round (known series)"
    )
    print(f"first round (new)     : {args.series / first_round_s:,.0f} points/s")
    print(f"gateway CPU           : {(cpu1 - cpu0) / points * 1e6:.2f} CPU s per million points")
    print(
        f"cores used            : gateway {(cpu1 - cpu0) / elapsed:.2f}, "
        f"this client {client_cpu / elapsed:.2f} (of {os.cpu_count()} on the machine)"
    )
    known = points - args.series
    print(
        f"  new | known series  : {cpu_first / args.series * 1e6:.2f} CPU s per million points"
        + (
            f" | {(cpu1 - cpu0 - cpu_first) / known * 1e6:.2f} "
            f"({(cpu1 - cpu0 - cpu_first) / sum(map(len, rounds[1:])) * 1e6:.0f} us per request)"
            if known
            else ""
        )
    )
    print(
        f"gateway RSS           : {rss1 / 2**20:.0f} MiB (peak {peak / 2**20:.0f} MiB, "
        f"{rss0 / 2**20:.0f} MiB at start)"
    )
    print(f"bytes per series      : {(rss1 - rss0) / args.series:,.0f} B (RSS growth / series)")
    print(
        f"scrape page           : {scrape_bytes / 1e6:.1f} MB in {scrape_s:.3f} s "
        f"(again: {scrape2_s:.3f} s) at {args.series:,} series"
    )


if __name__ == "__main__":
    main()
