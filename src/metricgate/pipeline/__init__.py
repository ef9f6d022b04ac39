"""The pipeline: component contract, registry, queues, fan-out and the running service."""

from metricgate.pipeline.component import Component, Consumer, Exporter, Processor, Receiver
from metricgate.pipeline.host import Host
from metricgate.pipeline.queue import ExporterConfig, ExporterQueue, QueueSettings, RetrySettings
from metricgate.pipeline.registry import Factory, Kind, Registry

__all__ = [
    "Component",
    "Consumer",
    "Exporter",
    "ExporterConfig",
    "ExporterQueue",
    "Factory",
    "Host",
    "Kind",
    "Processor",
    "QueueSettings",
    "Receiver",
    "Registry",
    "RetrySettings",
]
