"""The `pushgateway` receiver driven by Go's client_golang and Node's prom-client push code."""

from __future__ import annotations

import asyncio
import subprocess

from metricgate.model import HistogramPoint, MetricKind
from tests.support.clients import go_program, node_env
from tests.support.pushgateway import Gateway

GO_PUSH = """
package main

import (
	"fmt"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/push"
)

func main() {
	jobs := prometheus.NewCounterVec(
		prometheus.CounterOpts{Name: "go_jobs_total", Help: "Jobs done."}, []string{"queue"})
	jobs.WithLabelValues("q1").Add(3)
	latency := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "go_latency_seconds", Help: "Latency.", Buckets: []float64{0.1, 1}})
	latency.Observe(0.05)
	latency.Observe(0.5)
	latency.Observe(5)
	sizes := prometheus.NewSummary(prometheus.SummaryOpts{
		Name: "go_size_bytes", Help: "Sizes.", Objectives: map[float64]float64{0.5: 0.05}})
	sizes.Observe(42)
	pusher := push.New(os.Args[1], "gojob").Grouping("instance", "i1")
	err := pusher.Collector(jobs).Collector(latency).Collector(sizes).Push()
	if err == nil {
		err = push.New(os.Args[1], "gojob").Grouping("instance", "i1").Collector(
			prometheus.NewGauge(prometheus.GaugeOpts{Name: "go_added", Help: "Added."})).Add()
	}
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
}
"""

NODE_PUSH = """
const client = require('prom-client');
const registry = new client.Registry();
const jobs = new client.Counter({name: 'node_jobs_total', help: 'Jobs.', labelNames: ['queue'],
  registers: [registry]});
jobs.inc({queue: 'q1'}, 2);
const latency = new client.Histogram({name: 'node_latency_seconds', help: 'Latency.',
  buckets: [0.1, 1], registers: [registry]});
latency.observe(0.5);
const gateway = new client.Pushgateway(process.argv[1], {}, registry);
gateway.pushAdd({jobName: 'nodejob', groupings: {instance: ''}})
  .then(() => process.exit(0))
  .catch((err) => { console.error(err.message); process.exit(1); });
"""


async def test_client_golang_push_and_add(gateway: Gateway) -> None:
    binary = await asyncio.to_thread(go_program, GO_PUSH, "gopush")
    done = await asyncio.to_thread(
        subprocess.run,
        [str(binary), f"http://{gateway.address}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    page = await gateway.page('go_added{instance="i1",job="gojob"} 0')
    labels = 'instance="i1",job="gojob"'
    assert f'go_jobs_total{{{labels},queue="q1"}} 3' in page
    assert f'go_latency_seconds_bucket{{{labels},le="+Inf"}} 3' in page
    assert f"go_latency_seconds_sum{{{labels}}} 5.55" in page
    assert f"go_size_bytes_count{{{labels}}} 1" in page
    groups = {g.metric.name: g for b in gateway.capture.batches for g in b}
    assert groups["go_jobs_total"].metric.kind is MetricKind.SUM
    [point] = groups["go_latency_seconds"].values
    assert isinstance(point, HistogramPoint) and point.bucket_counts == (1, 1, 1)


async def test_prom_client_push_with_an_empty_grouping_value(gateway: Gateway) -> None:
    done = await asyncio.to_thread(
        subprocess.run,
        ["node", "-e", NODE_PUSH, f"http://{gateway.address}"],
        capture_output=True,
        text=True,
        timeout=60,
        env=node_env(),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    page = await gateway.page("node_latency_seconds_count")
    assert 'node_jobs_total{job="nodejob",queue="q1"} 2' in page
    assert 'node_latency_seconds_count{job="nodejob"} 1' in page
