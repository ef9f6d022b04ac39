"""`metricgate run --workers 2` against `--workers 1`, as processes with real clients and servers.

The same input (the OpenTelemetry SDK's OTLP/HTTP exporter, and remote-write requests each on a
new connection, so the kernel spreads them over both workers) goes through relabel,
cardinality_limit and aggregate into the Prometheus page and a real VictoriaMetrics: the page and
the stored series must be the same. Then a worker is killed with SIGKILL while its disk queue
holds acknowledged samples and the backend is down: the supervisor starts it again alone, the
other keeps serving, and every acknowledged sample reaches VictoriaMetrics.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
import requests

from tests.support.gateway import Gateway, default_ports
from tests.support.poll import block_until
from tests.support.ports import free_port
from tests.support.victoria import run_victoria_metrics
from tests.support.workers import (
    TEMPLATE,
    block_until_stored,
    own_samples,
    page_samples,
    ports_for,
    run_workers,
    send_everything,
    stored_labels,
)

pytestmark = pytest.mark.integration


def test_two_workers_give_what_one_gives(tmp_path: Path) -> None:
    with run_victoria_metrics(tmp_path) as store:
        pages = {}
        offenders = {}
        capacities = {}
        for workers in (1, 2):
            ports = ports_for(store.port, f"w{workers}")
            with run_workers(tmp_path, TEMPLATE, ports, workers) as gateway:
                send_everything(gateway)
                time.sleep(2.5)  # two aggregation intervals: every window flushed
                block_until(lambda: len(page_samples(gateway)) > 50, 10, "page filled")
                pages[workers] = page_samples(gateway)
                offenders[workers] = [_cardinality(gateway) for _ in range(4)]
                capacities[workers] = {_queue_capacities(gateway) for _ in range(4)}
                if workers == 2:
                    each = own_samples(
                        gateway, "metricgate_receiver_accepted_points_total", "?workers=each"
                    )
                    assert {k.split('worker="')[1][0] for k, v in each.items() if v > 0} == {
                        "0",
                        "1",
                    }
                    assert (
                        sum(own_samples(gateway, "metricgate_worker_routed_points_total").values())
                        > 0
                    )
                    started = [
                        json.loads(line)
                        for line in gateway.logs().splitlines()
                        if '"metricgate started"' in line
                    ]
                    assert sorted(entry["worker"] for entry in started) == [0, 1]
                    summed = own_samples(gateway, "metricgate_receiver_accepted_points_total")
                    assert sum(summed.values()) == sum(each.values())
        one, two = pages[1], pages[2]
        assert one.keys() == two.keys()
        assert one == two
        # Whichever worker answers, the console's graph shows the whole set: two queues each.
        ((one_set,), (two_sets,)) = capacities[1], capacities[2]
        assert dict(two_sets) == {eid: 2 * capacity for eid, capacity in one_set}
        # Whichever worker answers, /debug/cardinality shows what one process shows.
        assert all(report == offenders[1][0] for report in offenders[1] + offenders[2])
        listed = offenders[1][0]
        assert ("limited_gauge", 6, 4) in listed and ("agg_input", 6, 6) in listed  # cap 6
        assert len(listed) == 16 + 2 + 9  # rw_metric_*, the capped two, the SDK's
        names = {name for name, _ in one}
        assert "limited_gauge" in names and "skip_me" not in names
        assert any(name.startswith("agg_input:1s_by_zone") for name in names)
        assert any(name.startswith("sdk_latency_milliseconds") for name in names)
        limited = [dict(labels) for name, labels in one if name == "limited_gauge"]
        assert len([labels for labels in limited if "id" in labels]) == 6  # and the overflow
        stored_one = block_until_stored(store, "w1", 60)
        stored_two = block_until_stored(store, "w2", len(stored_one))
        assert stored_one == stored_two


def _cardinality(gateway: Gateway) -> list[tuple[str, int, int]]:
    """The metrics `/debug/cardinality` lists, asked on a new connection (either worker); the
    console's explorer, asked on another, lists the same."""
    listed = []
    for path in ("/debug/cardinality?limit=100", "/api/console/cardinality?limit=100"):
        with requests.Session() as session:
            found = session.get(gateway.url("telemetry", path), timeout=5)
        assert found.status_code == 200, found.text
        (report,) = found.json()["limiters"]
        listed.append(
            sorted((m["metric"], m["series"], m["refused_series"]) for m in report["metrics"])
        )
    assert listed[0] == listed[1]
    return listed[0]


def _queue_capacities(gateway: Gateway) -> tuple[tuple[str, int], ...]:
    """Each exporter's queue capacity in the console's graph, asked on a new connection."""
    with requests.Session() as session:
        found = session.get(gateway.url("telemetry", "/api/console/graph"), timeout=5)
    assert found.status_code == 200, found.text
    exporters = found.json()["exporters"]
    return tuple(sorted((eid, e["queue"]["capacity"]) for eid, e in exporters.items()))


DURABLE = TEMPLATE.replace(
    "    flush_interval: 50ms\n",
    "    flush_interval: 50ms\n"
    '    sending_queue: {{storage: {{directory: "{queue}", fsync: always}}}}\n',
)


def _children(pid: int) -> dict[int, int]:
    """Worker index by pid, for the workers the supervisor `pid` started."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) != pid:
            continue
        for item in environ.split(b"\0"):
            if item.startswith(b"METRICGATE_WORKER_INDEX="):
                found[int(entry.name)] = int(item.split(b"=", 1)[1])
    return found


def test_a_killed_worker_is_restarted_alone_and_its_queue_replayed(tmp_path: Path) -> None:
    store_port = free_port()  # nothing listens there yet: every sample stays queued
    ports = {**ports_for(store_port, "durable"), "queue": str(tmp_path / "queue")}
    with run_workers(tmp_path, DURABLE, ports, 2) as gateway:
        send_everything(gateway)
        time.sleep(2.5)  # every aggregation window flushed
        acknowledged = {stored_labels(name, labels) for name, labels in page_samples(gateway)}
        workers = _children(gateway.process.pid)
        assert sorted(workers.values()) == [0, 1]
        queued = tmp_path / "queue" / "worker-1" / "prometheus_remote_write"
        assert queued.is_dir()
        victim = next(pid for pid, index in workers.items() if index == 1)
        survivor = next(pid for pid, index in workers.items() if index == 0)
        os.kill(victim, signal.SIGKILL)

        def restarted() -> bool:
            now = _children(gateway.process.pid)
            return sorted(now.values()) == [0, 1] and victim not in now

        block_until(restarted, 20, "worker 1 restarted", 0.1)
        assert survivor in _children(gateway.process.pid)
        block_until(
            lambda: requests.get(gateway.url("telemetry", "/readyz"), timeout=2).ok,
            30,
            "the set ready again",
            0.1,
        )
        assert "restarting it alone" in gateway.logs()
        with run_victoria_metrics(tmp_path, port=store_port) as store:
            stored = block_until_stored(store, "durable", len(acknowledged))
            assert stored.keys() == acknowledged


RELOADED = """
receivers:
  otlp:
    protocols:
      http: {{endpoint: "127.0.0.1:{http}"}}
processors:
  relabel:
    relabel_configs:
      - {{target_label: stage, replacement: "{stage}"}}
exporters:
  prometheus: {{endpoint: "127.0.0.1:{prometheus}"}}
service:
  pipelines:
    metrics: {{receivers: [otlp], processors: [relabel], exporters: [prometheus]}}
  telemetry:
    metrics: {{address: "127.0.0.1:{telemetry}"}}
    logs: {{level: info, format: json}}
"""


def _stages(gateway: Gateway) -> set[str]:
    return {
        dict(labels).get("stage", "")
        for name, labels in page_samples(gateway)
        if name != "target_info"
    }


def _post_every_metric(gateway: Gateway) -> None:
    for m in range(12):  # names spread over both workers
        assert gateway.post_gauge(f"reload_gauge_{m}", [({"k": "v"}, 1.0, time.time_ns())]) == 200


def _reloaded_at(gateway: Gateway) -> dict[str, float]:
    name = "metricgate_config_last_reload_success_timestamp_seconds"
    return own_samples(gateway, name, "?workers=each")


def test_a_reload_reaches_every_worker(tmp_path: Path) -> None:
    ports = {**default_ports(), "stage": "one"}
    with run_workers(tmp_path, RELOADED, ports, 2) as gateway:  # type: ignore[arg-type]
        _post_every_metric(gateway)
        assert _stages(gateway) == {"one"}
        before = _reloaded_at(gateway)
        assert len(before) == 2
        time.sleep(1.1)  # the success time has whole-second resolution at worst
        gateway.config_path.write_text(RELOADED.format(**{**ports, "stage": "two"}))
        gateway.process.send_signal(signal.SIGHUP)  # to the supervisor

        def reloaded_everywhere() -> bool:
            now = _reloaded_at(gateway)
            return all(now[key] > before[key] for key in before)

        block_until(reloaded_everywhere, 20, "both workers reloaded", 0.1)
        _post_every_metric(gateway)
        assert _stages(gateway) == {"one", "two"}  # the first values stay until they expire
        assert len([s for s in page_samples(gateway) if dict(s[1]).get("stage") == "two"]) == 12

        gateway.config_path.write_text(RELOADED.format(**{**ports, "stage": "three"}))
        answer = requests.post(gateway.url("telemetry", "/-/reload"), timeout=10)
        assert answer.status_code == 200, answer.text

        def both_three() -> bool:
            _post_every_metric(gateway)
            return (
                len([s for s in page_samples(gateway) if dict(s[1]).get("stage") == "three"]) == 12
            )

        block_until(both_three, 20, "both workers on the third config", 0.2)


def test_each_worker_writes_an_audit_log_of_its_own(tmp_path: Path) -> None:
    audit = tmp_path / "audit.log"
    template = RELOADED.replace(
        "    logs: {{level: info, format: json}}\n",
        f'    logs: {{{{level: info, format: json}}}}\n    audit: {{{{output: "{audit}"}}}}\n',
    )
    ports = {**default_ports(), "stage": "one"}
    with run_workers(tmp_path, template, ports, 2) as gateway:  # type: ignore[arg-type]
        assert gateway.stop() == 0
    assert not audit.exists()
    for index in (0, 1):
        own = tmp_path / f"audit.worker-{index}.log"
        events = [json.loads(line)["event"] for line in own.read_text().splitlines()]
        assert events == ["start", "config_load", "stop"], (index, events)
