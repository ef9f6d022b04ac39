"""Two workers' exchanges in one event loop, over real unix sockets: routing by metric name,
failures raised again on the asking side, questions, and an owner that cannot be reached."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from metricgate import errors, role
from metricgate.model import INTERNER, Batch, MetricPoints, sorted_attributes
from metricgate.model.series import MetricKind
from metricgate.pipeline.link import Link
from metricgate.telemetry.metrics import SelfMetrics
from metricgate.workers import Router, WorkerExchange
from tests.support.batches import metric
from tests.support.sink import Sink

NS = 1_700_000_000_000_000_000


def batch_of(names: list[str], series: int = 3) -> Batch:
    groups = []
    for name in names:
        group = MetricPoints(metric(name))
        for s in range(series):
            group.append(INTERNER.intern_series(group.metric, (("k", f"v{s}"),)), float(s), NS)
        groups.append(group)
    return Batch(groups)


def points(batches: list[Batch]) -> set[tuple[str, str, float]]:
    return {
        (g.metric.name, str(s.attributes[0][1]), v)
        for b in batches
        for g in b.metrics
        for s, v in zip(g.series, g.values, strict=True)
    }


@asynccontextmanager
async def pair(start: tuple[bool, bool] = (True, True)) -> AsyncIterator[list[WorkerExchange]]:
    directory = tempfile.mkdtemp(prefix="mg-")  # unix socket paths must stay short
    try:
        workers = [WorkerExchange(role.WorkerRole(i, 2, directory), SelfMetrics()) for i in (0, 1)]
        for worker, started in zip(workers, start, strict=True):
            if started:
                await worker.start()
        yield workers
        for worker in workers:
            await worker.shutdown()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def wire(workers: list[WorkerExchange], *sinks: object) -> None:
    for worker, sink in zip(workers, sinks, strict=True):
        worker.entry("metrics").target = sink  # type: ignore[assignment]


NAMES = [f"metric_{i}" for i in range(40)]


async def test_each_metric_reaches_the_worker_that_owns_it() -> None:
    async with pair() as workers:
        sinks = [Sink(), Sink()]
        wire(workers, *sinks)
        sent = batch_of(NAMES)
        await workers[0].router("metrics").consume(sent)
        await workers[1].router("metrics").consume(batch_of(NAMES[:5], series=1))
        for index, sink in enumerate(sinks):
            names = {g.metric.name for b in sink.batches for g in b.metrics}
            assert names and all(role.owner(name, 2) == index for name in names)
        received = points(sinks[0].batches) | points(sinks[1].batches)
        assert points([sent]) <= received
        assert len(sinks[0].batches[0].metrics) + len(sinks[1].batches[0].metrics) == len(NAMES)


async def test_a_batch_wholly_owned_here_is_passed_on_as_it_is() -> None:
    async with pair() as workers:
        sinks = [Sink(), Sink()]
        wire(workers, *sinks)
        mine = [name for name in NAMES if role.owner(name, 2) == 0]
        sent = batch_of(mine)
        await workers[0].router("metrics").consume(sent)
        assert sinks[0].batches == [sent] and sinks[0].batches[0] is sent
        assert sinks[1].batches == []


async def test_native_prometheus_metrics_keep_their_form_between_workers() -> None:
    async with pair() as workers:
        sinks = [Sink(), Sink()]
        wire(workers, *sinks)
        name = next(name for name in NAMES if role.owner(name, 2) == 1)
        base = metric(name, kind=MetricKind.GAUGE)
        native = INTERNER.intern_metric(
            base.resource, base.scope, name, "", MetricKind.GAUGE, native_prometheus=True
        )
        group = MetricPoints(native)
        labels = sorted_attributes({"job": "j", "instance": "i"})
        group.append(INTERNER.intern_series(native, labels), 1.5, NS)
        await workers[0].router("metrics").consume(Batch([group]))
        (arrived,) = sinks[1].batches[0].metrics
        assert arrived.metric.native_prometheus and arrived.metric.name == name
        assert arrived.series[0].attributes == labels and arrived.values == [1.5]
        assert arrived.metric.scope == native.scope


class Refusing:
    def __init__(self, error: errors.ConsumeError) -> None:
        self.error = error

    async def consume(self, batch: Batch) -> None:
        raise self.error


@pytest.mark.parametrize(
    "error",
    [
        errors.QueueFullError("queue full", 2.5),
        errors.MemoryLimitError("over the soft limit", 1.0),
        errors.PermanentError("bad data"),
    ],
    ids=lambda e: type(e).__name__,
)
async def test_an_owner_refusal_is_raised_again_with_its_class(error: errors.ConsumeError) -> None:
    async with pair() as workers:
        wire(workers, Sink(), Refusing(error))
        theirs = [name for name in NAMES if role.owner(name, 2) == 1]
        with pytest.raises(type(error)) as raised:
            await workers[0].router("metrics").consume(batch_of(theirs))
        assert str(error) in str(raised.value) and "worker 1" in str(raised.value)
        assert type(raised.value).http_status == type(error).http_status
        if isinstance(error, errors.RetryableError):
            assert isinstance(raised.value, errors.RetryableError)
            assert raised.value.retry_after == error.retry_after


async def test_an_owner_that_is_not_running_is_a_retryable_refusal() -> None:
    async with pair(start=(True, False)) as workers:
        sinks = [Sink(), Sink()]
        wire(workers, *sinks)
        with pytest.raises(errors.UnavailableError, match="worker 1 is not reachable"):
            await workers[0].router("metrics").consume(batch_of(NAMES))
        assert errors.UnavailableError.http_status == 503


async def test_an_owner_that_goes_away_mid_request_fails_the_request() -> None:
    async with pair() as workers:
        blocked = asyncio.Event()

        class Stuck:
            async def consume(self, batch: Batch) -> None:
                blocked.set()
                await asyncio.sleep(3600)

        wire(workers, Sink(), Stuck())
        theirs = [name for name in NAMES if role.owner(name, 2) == 1]
        sending = asyncio.create_task(workers[0].router("metrics").consume(batch_of(theirs)))
        await blocked.wait()
        await workers[1].shutdown(drain_s=0.1)  # closes its end: the asking side hears of it
        with pytest.raises(errors.UnavailableError):
            await asyncio.wait_for(sending, 10)


async def test_questions_are_answered_by_every_other_worker() -> None:
    async with pair() as workers:

        async def page(question: bytes) -> bytes:
            return b"worker 1 answers " + question

        workers[1].answer("page", page)
        assert await workers[0].ask_peers("page", b"hello") == [b"worker 1 answers hello"]
        with pytest.raises(errors.UnavailableError, match="does not serve"):
            await workers[0].ask_peers("nothing", b"")


async def test_a_pipeline_not_yet_wired_refuses() -> None:
    async with pair() as workers:
        theirs = [name for name in NAMES if role.owner(name, 2) == 1]
        with pytest.raises(errors.UnavailableError, match="not running yet"):
            await workers[0].router("metrics").consume(batch_of(theirs))
        assert isinstance(workers[0].router("metrics"), Router)
        assert workers[0].router("metrics") is workers[0].router("metrics")
        assert isinstance(workers[0].entry("metrics"), Link)
