"""The component contract: what every receiver, processor and exporter is.

A component has an id (`type[/name]`), `start(host)` and `shutdown()`. Data flows through
`consume(batch)`: receivers call it on the consumer they were built with, processors implement it
and call the next consumer, exporters implement `export(batch)` and the pipeline puts a bounded
queue in front of them. `shutdown()` must be idempotent and safe when `start()` never ran. A
component rebuilt by a hot reload may `adopt()` its predecessor's state.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar, Protocol

from metricgate.model import Batch

if TYPE_CHECKING:
    from metricgate.pipeline.host import Host
    from metricgate.telemetry.metrics import Gauge, Reading


class Consumer(Protocol):
    """Anything that takes batches: the next processor, a fan-out, an exporter queue."""

    async def consume(self, batch: Batch) -> None:
        """Take `batch` or raise a `ConsumeError` subclass saying why not."""


class Component(ABC):  # noqa: B024 - lifecycle hooks are optional
    """Base of all components: an id and a lifecycle."""

    def __init__(self, component_id: str) -> None:
        self.component_id = component_id

    async def start(self, host: Host) -> None:  # noqa: B027 - optional hook
        """Start background work (servers, timers). Must return promptly."""

    async def shutdown(self) -> None:  # noqa: B027 - optional hook
        """Stop background work and flush. Idempotent; safe if `start` never ran."""

    def observe(self, gauge: Gauge, read: Reading) -> None:
        """Report `read` on the own-telemetry `gauge` while this component runs: the service
        stops the reading when it shuts the component down (a reload that removes or rebuilds
        it leaves no stale rows)."""
        forgets: list[Callable[[], None]] = self.__dict__.setdefault("_observed", [])
        forgets.append(gauge.observe(read))

    def stop_reporting(self) -> None:
        """Stop every reading `observe` added (after `shutdown`)."""
        for forget in self.__dict__.pop("_observed", []):
            forget()

    def adopt(self, previous: Component) -> bool:
        """Hot reload: take over what still applies of `previous` (the running component of the
        same id, whose config changed) before this one starts; return whether anything was
        taken. `previous` keeps running until the switch and is then shut down: it must not
        flush, emit or close what it handed over. If the reload fails before the switch,
        `previous.adopt(self)` must take it all back. By default nothing is taken."""
        return False


class Receiver(Component):
    """Accepts data from the outside world and passes each batch to `next_consumer`."""

    def __init__(self, component_id: str, next_consumer: Consumer) -> None:
        super().__init__(component_id)
        self.next_consumer = next_consumer


class Processor(Component):
    """Transforms batches and passes the result to `next_consumer`."""

    holds_exporters: ClassVar[bool] = False
    """True for a processor that sends to exporter queues itself (`Host.exporters`, taken at
    start): a reload that replaces an exporter queue rebuilds it."""

    def __init__(self, component_id: str, next_consumer: Consumer) -> None:
        super().__init__(component_id)
        self.next_consumer = next_consumer

    @abstractmethod
    async def consume(self, batch: Batch) -> None:
        """Process `batch` and hand the result on."""


class Exporter(Component):
    """Sends batches somewhere. The pipeline wraps each exporter in its own bounded queue."""

    @abstractmethod
    async def export(self, batch: Batch) -> int | None:
        """Deliver `batch` in one attempt: return the points the backend accepted (None: all);
        raise `RetryableError` (`PartialExportError` if part went through) or `PermanentError`.
        The sending core retries, counts and logs (`pipeline/queue.py`)."""
