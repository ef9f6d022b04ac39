"""What TLS, bearer authentication and tenant stamping cost on OTLP/HTTP, end to end.

Runs `metricgate run` twice per repetition on the same requests: `plain` (OTLP/HTTP in,
Prometheus endpoint out) and `secured` (the same listener with `tls`, `auth` by
`bearertokenauth`, a `tenants:` entry: every point stamped with its tenant). Clients keep their
connections alive (TLS handshakes are paid once per connection). Prints the gateway's CPU seconds
per million points in steady state (rounds after the first, which creates the series) for each,
and the ratio; the issue's bound is at most +10 %.

    .venv/bin/python bench/bench_security.py                         # 100k series, 6 rounds, x3
    .venv/bin/python bench/bench_security.py --series 50000 --repeat 5

Client and gateway share the machine's cores; the gateway's own CPU time (from /proc) is the figure
that does not depend on the client. Variants alternate, so background load hits both alike.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import aiohttp

from bench_gateway import build_requests, free_port, proc_stat

CONFIG = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: "127.0.0.1:{http}"
{security}
exporters:
  prometheus: {{endpoint: "127.0.0.1:{prom}"}}
service:
{extensions}
  pipelines:
    metrics: {{receivers: [otlp], exporters: [prometheus]}}
  telemetry:
    metrics: {{address: "127.0.0.1:{tel}"}}
    logs: {{level: warning}}
"""

SECURITY = """\
        tls: {{cert_file: "{dir}/server.pem", key_file: "{dir}/server.key"}}
        auth: {{authenticator: bearertokenauth}}
extensions:
  bearertokenauth: {{tokens: [{{token: "{token}", principal: bench-app, tenant: team-bench}}]}}
tenants:
  team-bench: {{rate_limit: {{points_per_second: 100000000}}}}"""

TOKEN = "bench-token-3f9a0c"


def certificates(directory: Path) -> None:
    """A self-signed certificate for 127.0.0.1 (the client trusts exactly it)."""
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(directory / "server.key"), "-out", str(directory / "server.pem"),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip


async def send(
    url: str,
    rounds: list[list[bytes]],
    concurrency: int,
    context: ssl.SSLContext | None,
    cpu_seconds: Callable[[], float],
) -> list[float]:
    """Send every round over the same keep-alive connections; the gateway CPU seconds of each
    round after the first (which creates the series and opens the connections)."""
    headers = {"Content-Type": "application/x-protobuf"}
    if context is not None:
        headers["Authorization"] = f"Bearer {TOKEN}"
    connector = aiohttp.TCPConnector(limit=concurrency, ssl=context if context else False)
    spent = []

    async def worker(session: aiohttp.ClientSession, queue: asyncio.Queue[bytes]) -> None:
        while not queue.empty():
            body = queue.get_nowait()
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"HTTP {response.status}")

    async with aiohttp.ClientSession(connector=connector) as session:
        for index, bodies in enumerate(rounds):
            queue: asyncio.Queue[bytes] = asyncio.Queue()
            for body in bodies:
                queue.put_nowait(body)
            before = cpu_seconds()
            await asyncio.gather(*(worker(session, queue) for _ in range(concurrency)))
            if index:
                spent.append(cpu_seconds() - before)
    return spent


def run(variant: str, rounds: list[list[bytes]], args: argparse.Namespace) -> float:
    """One gateway process; its CPU seconds per million points after the first round."""
    ports = {"http": free_port(), "prom": free_port(), "tel": free_port()}
    secured = variant == "secured"
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        security, extensions, context = "", "", None
        if secured:
            certificates(directory)
            security = SECURITY.format(dir=directory, token=TOKEN)
            extensions = "  extensions: [bearertokenauth]"
            context = ssl.create_default_context(cafile=str(directory / "server.pem"))
        config = directory / "bench.yaml"
        config.write_text(CONFIG.format(**ports, security=security, extensions=extensions))
        process = subprocess.Popen([sys.executable, "-m", "metricgate", "run", "-c", str(config)])
        try:
            wait_ready(ports["tel"])
            scheme = "https" if secured else "http"
            url = f"{scheme}://127.0.0.1:{ports['http']}/v1/metrics"
            cpu = asyncio.run(
                send(url, rounds, args.concurrency, context, lambda: proc_stat(process.pid)[0])
            )
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(60)
    return sum(cpu) / (args.series * len(cpu)) * 1e6


def wait_ready(port: int) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--per-request", type=int, default=5_000, help="points per request")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    print(f"building requests: {args.series:,} series x {args.rounds} rounds", flush=True)
    rounds = [build_requests(args.series, args.per_request, r) for r in range(args.rounds)]
    figures: dict[str, list[float]] = {"plain": [], "secured": []}
    for repetition in range(args.repeat):
        for variant in ("plain", "secured") if repetition % 2 == 0 else ("secured", "plain"):
            figures[variant].append(run(variant, rounds, args))
            print(f"  {variant:<8} {figures[variant][-1]:.3f} CPU s per million points", flush=True)
    plain, secured = (statistics.median(figures[v]) for v in ("plain", "secured"))
    least_plain, least_secured = min(figures["plain"]), min(figures["secured"])
    print("\n== OTLP/HTTP, keep-alive, steady state: gateway CPU per million points ==")
    print(f"plain                         : {plain:.3f} s (runs: {fmt(figures['plain'])})")
    print(f"TLS + bearer + tenant stamp   : {secured:.3f} s (runs: {fmt(figures['secured'])})")
    print(
        f"difference                    : {(secured / plain - 1) * 100:+.1f} % of medians, "
        f"{(least_secured / least_plain - 1) * 100:+.1f} % of the least"
    )


def fmt(values: list[float]) -> str:
    return ", ".join(f"{value:.3f}" for value in values)


if __name__ == "__main__":
    main()
