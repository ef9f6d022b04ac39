"""metricgate's `prometheus` receiver vs vmagent 1.79, scraping the same targets in the same run.

Starts, on this machine:
- a page server (its own process, uvloop) answering for N targets, each a distinct loopback
  address (`127.0.x.y:port`), with a pre-rendered page of S samples (counters, gauges and
  histograms with realistic labels, text format 0.0.4);
- one VictoriaMetrics as the sink;
- vmagent (`-promscrape.config`, `-remoteWrite.label=agent=vmagent`) and metricgate (`prometheus`
  receiver -> `prometheus_remote_write` exporter with `external_labels: {agent: metricgate}`),
  both with the same scrape config (one job, every target, `scrape_interval`), side by side.

After a warm-up, CPU time of each agent process (user + system, all threads, from /proc) is
measured over the window, with the scrapes each made in it (`vm_promscrape_scrapes_total`,
`metricgate_receiver_scrapes_total`). Printed per agent: CPU seconds per million scraped
samples, share of one core, and the scrape durations it recorded (`scrape_duration_seconds`,
read back from the sink: median, p99, max over the window).

    .venv/bin/python bench/bench_scrape.py                       # 1000 targets x 500, 15 s
    .venv/bin/python bench/bench_scrape.py --targets 200 --window 60
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".cache/debs/root/usr/bin"
TICK = os.sysconf("SC_CLK_TCK")

SERVER = r"""
import asyncio, sys
import uvloop
from aiohttp import web

page = sys.stdin.buffer.read()
async def serve(request):
    return web.Response(body=page, headers={"Content-Type": "text/plain; version=0.0.4"})
async def main():
    app = web.Application()
    app.router.add_get("/metrics", serve)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "0.0.0.0", int(sys.argv[1]), backlog=4096).start()
    print("ready", flush=True)
    await asyncio.Event().wait()
uvloop.run(main())
"""


def render_page(samples: int) -> bytes:
    """About `samples` sample lines: 60 % counters, 20 % gauges, 20 % histogram lines."""
    lines: list[str] = []
    count = 0
    routes = [f"/api/v1/{name}" for name in ("users", "orders", "items", "carts", "search")]
    family = 0
    while count < samples * 0.6:
        name = f"app_http_requests_{family}_total"
        lines += [f"# HELP {name} Requests handled.", f"# TYPE {name} counter"]
        for route in routes:
            for code in ("200", "404", "500"):
                lines.append(f'{name}{{method="GET",route="{route}",status="{code}"}} {count * 7}')
                count += 1
        family += 1
    while count < samples * 0.8:
        name = f"app_queue_depth_{family}"
        lines += [f"# HELP {name} Items waiting.", f"# TYPE {name} gauge"]
        for shard in range(10):
            lines.append(f'{name}{{queue="jobs",shard="{shard}"}} {count * 1.5}')
            count += 1
        family += 1
    bounds = ("0.005", "0.01", "0.05", "0.1", "0.5", "1", "5", "+Inf")
    while count < samples:
        name = f"app_request_duration_seconds_{family}"
        lines += [f"# HELP {name} Latency.", f"# TYPE {name} histogram"]
        for route in routes:
            for index, bound in enumerate(bounds):
                lines.append(f'{name}_bucket{{route="{route}",le="{bound}"}} {index * 10}')
            lines.append(f'{name}_sum{{route="{route}"}} 12.5')
            lines.append(f'{name}_count{{route="{route}"}} 70')
            count += len(bounds) + 2
        family += 1
    return ("\n".join(lines) + "\n").encode()


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def scalar(text: str, name: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name) and not line.startswith("#")
    )


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as reply:
        return str(reply.read().decode())


def wait_ready(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            get(url)
            return
        time.sleep(0.2)
    raise SystemExit(f"{url} did not answer")


@contextlib.contextmanager
def process(
    argv: list[str], log: Path, stdin: bytes | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.PIPE if stdin else None
        )
    if stdin is not None and proc.stdin is not None:
        proc.stdin.write(stdin)
        proc.stdin.close()
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--targets", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--interval", type=int, default=15)
    parser.add_argument("--warmup", type=float, default=90)
    parser.add_argument("--window", type=float, default=120)
    parser.add_argument(
        "--max-samples-per-send",
        type=int,
        default=2000,
        help="the remote-write exporter's max_samples_per_send (its default: 2000)",
    )
    parser.add_argument(
        "--shards",
        type=int,
        default=0,
        help="fix the remote-write exporter's shards (min = max); 0: its default (1 to 10, "
        "resharded by load: the first sight of the targets' series grows it)",
    )
    parser.add_argument(
        "--exporter",
        choices=("prometheus_remote_write", "debug"),
        default="prometheus_remote_write",
        help="metricgate's exporter: debug measures the receiver alone (no scrape durations)",
    )
    args = parser.parse_args()
    page = render_page(args.samples)
    samples_per_page = sum(1 for line in page.split(b"\n") if line and not line.startswith(b"#"))
    work = Path(tempfile.mkdtemp(prefix="bench-scrape-"))
    page_port, vm_port, vma_port, mg_port = free_port(), free_port(), free_port(), free_port()
    targets = [f"127.0.{1 + i // 250}.{1 + i % 250}:{page_port}" for i in range(args.targets)]
    scrape = {
        "global": {"scrape_interval": f"{args.interval}s", "scrape_timeout": f"{args.interval}s"},
        "scrape_configs": [{"job_name": "bench", "static_configs": [{"targets": targets}]}],
    }
    (work / "prometheus.yml").write_text(json.dumps(scrape))
    (work / "metricgate.yaml").write_text(
        json.dumps(
            {
                "receivers": {"prometheus": {"config": scrape}},
                "exporters": {
                    "prometheus_remote_write": {
                        "endpoint": f"http://127.0.0.1:{vm_port}/api/v1/write",
                        "external_labels": {"agent": "metricgate"},
                        "max_samples_per_send": args.max_samples_per_send,
                        **(
                            {"shards": {"min": args.shards, "max": args.shards}}
                            if args.shards
                            else {}
                        ),
                    }
                }
                if args.exporter == "prometheus_remote_write"
                else {"debug": {}},
                "service": {
                    "pipelines": {
                        "metrics": {
                            "receivers": ["prometheus"],
                            "exporters": [args.exporter],
                        }
                    },
                    "telemetry": {
                        "metrics": {"address": f"127.0.0.1:{mg_port}"},
                        "logs": {"level": "warning"},
                    },
                },
            }
        )
    )
    print(
        f"{args.targets} targets x {samples_per_page} samples every {args.interval}s "
        f"({args.targets * samples_per_page / args.interval:,.0f} samples/s), page "
        f"{len(page) / 1024:.1f} KiB; warm-up {args.warmup:g}s, window {args.window:g}s"
    )
    with contextlib.ExitStack() as stack:
        stack.enter_context(
            process([sys.executable, "-c", SERVER, str(page_port)], work / "pages.log", page)
        )
        wait_ready(f"http://127.0.0.1:{page_port}/metrics")
        stack.enter_context(
            process(
                [
                    str(BIN / "victoria-metrics"),
                    f"-storageDataPath={work / 'vm'}",
                    f"-httpListenAddr=127.0.0.1:{vm_port}",
                    "-search.latencyOffset=0s",
                    "-loggerLevel=WARN",
                ],
                work / "vm.log",
            )
        )
        wait_ready(f"http://127.0.0.1:{vm_port}/health")
        vmagent = stack.enter_context(
            process(
                [
                    str(BIN / "vmagent"),
                    f"-promscrape.config={work / 'prometheus.yml'}",
                    f"-remoteWrite.url=http://127.0.0.1:{vm_port}/api/v1/write",
                    "-remoteWrite.label=agent=vmagent",
                    f"-remoteWrite.tmpDataPath={work / 'vmagent'}",
                    f"-httpListenAddr=127.0.0.1:{vma_port}",
                    "-loggerLevel=WARN",
                ],
                work / "vmagent.log",
            )
        )
        metricgate = stack.enter_context(
            process(
                [
                    sys.executable,
                    "-m",
                    "metricgate",
                    "run",
                    "--config",
                    str(work / "metricgate.yaml"),
                ],
                work / "metricgate.log",
            )
        )
        wait_ready(f"http://127.0.0.1:{vma_port}/metrics")
        wait_ready(f"http://127.0.0.1:{mg_port}/metrics")
        time.sleep(args.warmup)
        agents = {
            "vmagent": (
                vmagent.pid,
                f"http://127.0.0.1:{vma_port}/metrics",
                "vm_promscrape_scrapes_total",
            ),
            "metricgate": (
                metricgate.pid,
                f"http://127.0.0.1:{mg_port}/metrics",
                "metricgate_receiver_scrapes_total",
            ),
        }
        before = {
            name: (cpu_seconds(pid), scalar(get(url), counter))
            for name, (pid, url, counter) in agents.items()
        }
        started = time.time()
        time.sleep(args.window)
        after = {
            name: (cpu_seconds(pid), scalar(get(url), counter))
            for name, (pid, url, counter) in agents.items()
        }
        ended = time.time()
        get(f"http://127.0.0.1:{vm_port}/internal/force_flush")
        time.sleep(2)
        figures = {}
        for name in agents:
            cpu = after[name][0] - before[name][0]
            scrapes = after[name][1] - before[name][1]
            samples = scrapes * samples_per_page
            durations = quantiles(vm_port, name, ended - started, ended)
            figures[name] = cpu / max(samples, 1) * 1e6
            print(
                f"{name:>10}: {scrapes:,.0f} scrapes, "
                f"{samples / (ended - started):,.0f} samples/s, "
                f"{cpu / (ended - started) * 100:.1f}% of a core, "
                f"{figures[name]:.2f} CPU s per million samples; scrape duration {durations}"
            )
        ratio = figures["metricgate"] / figures["vmagent"]
        print(f"metricgate / vmagent CPU per sample: {ratio:.2f}x")
        print(f"(logs and data in {work})")


def quantiles(vm_port: int, agent: str, window: float, at: float) -> str:
    out = []
    for label, expr in (
        ("median", "quantile_over_time(0.5, scrape_duration_seconds{agent=%r}[%ds])"),
        ("p99", "quantile_over_time(0.99, scrape_duration_seconds{agent=%r}[%ds])"),
        ("max", "max_over_time(scrape_duration_seconds{agent=%r}[%ds])"),
    ):
        query = (
            f"max({expr % (agent, int(window))})"
            if label == "max"
            else f"quantile(0.5, {expr % (agent, int(window))})"
        )
        if label == "p99":
            query = f"quantile(0.99, {expr % (agent, int(window))})"
        params = urllib.parse.urlencode({"query": query, "time": f"{at:.3f}"})
        body = json.loads(get(f"http://127.0.0.1:{vm_port}/api/v1/query?{params}"))
        result = body["data"]["result"]
        value = float(result[0]["value"][1]) if result else float("nan")
        out.append(f"{label} {value * 1000:.1f} ms")
    return ", ".join(out)


if __name__ == "__main__":
    main()
