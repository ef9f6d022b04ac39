"""The built-in component factories, one line each; plugins add theirs via entry points."""

from __future__ import annotations

from metricgate.exporters import debug
from metricgate.exporters.cloudwatch import FACTORY as CLOUDWATCH_EXPORTER_FACTORY
from metricgate.exporters.datadog import FACTORY as DATADOG_EXPORTER_FACTORY
from metricgate.exporters.loadbalancing import FACTORY as LOADBALANCING_EXPORTER_FACTORY
from metricgate.exporters.otlp import FACTORY as OTLP_EXPORTER_FACTORY
from metricgate.exporters.prometheus import FACTORY as PROMETHEUS_EXPORTER_FACTORY
from metricgate.exporters.prometheus_remote_write import FACTORY as REMOTE_WRITE_EXPORTER_FACTORY
from metricgate.pipeline.registry import Factory, Registry
from metricgate.processors import cardinality_limit, memory_limiter
from metricgate.processors.aggregate import FACTORY as AGGREGATE_FACTORY
from metricgate.processors.attributes import FACTORY as ATTRIBUTES_FACTORY
from metricgate.processors.batch import FACTORY as BATCH_FACTORY
from metricgate.processors.cumulative_to_delta import FACTORY as CUMULATIVE_TO_DELTA_FACTORY
from metricgate.processors.delta_to_cumulative import FACTORY as DELTA_TO_CUMULATIVE_FACTORY
from metricgate.processors.filter import FACTORY as FILTER_FACTORY
from metricgate.processors.genai_cost import FACTORY as GENAI_COST_FACTORY
from metricgate.processors.relabel import FACTORY as RELABEL_FACTORY
from metricgate.processors.resource import FACTORY as RESOURCE_FACTORY
from metricgate.processors.routing import FACTORY as ROUTING_FACTORY
from metricgate.receivers.otlp import FACTORY as OTLP_RECEIVER_FACTORY
from metricgate.receivers.prometheus import FACTORY as PROMETHEUS_RECEIVER_FACTORY
from metricgate.receivers.prometheus_remote_write import FACTORY as REMOTE_WRITE_RECEIVER_FACTORY
from metricgate.receivers.pushgateway import FACTORY as PUSHGATEWAY_RECEIVER_FACTORY

BUILTIN_FACTORIES: list[Factory] = [
    debug.FACTORY,
    AGGREGATE_FACTORY,
    memory_limiter.FACTORY,
    cardinality_limit.FACTORY,
    ATTRIBUTES_FACTORY,
    BATCH_FACTORY,
    CUMULATIVE_TO_DELTA_FACTORY,
    DELTA_TO_CUMULATIVE_FACTORY,
    FILTER_FACTORY,
    GENAI_COST_FACTORY,
    RELABEL_FACTORY,
    RESOURCE_FACTORY,
    ROUTING_FACTORY,
    OTLP_RECEIVER_FACTORY,
    REMOTE_WRITE_RECEIVER_FACTORY,
    PUSHGATEWAY_RECEIVER_FACTORY,
    PROMETHEUS_RECEIVER_FACTORY,
    PROMETHEUS_EXPORTER_FACTORY,
    OTLP_EXPORTER_FACTORY,
    DATADOG_EXPORTER_FACTORY,
    CLOUDWATCH_EXPORTER_FACTORY,
    LOADBALANCING_EXPORTER_FACTORY,
    REMOTE_WRITE_EXPORTER_FACTORY,
]


def default_registry() -> Registry:
    """Built-in components plus installed plugins."""
    registry = Registry(BUILTIN_FACTORIES)
    registry.load_entry_points()
    return registry
