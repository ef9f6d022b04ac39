"""The `debug` exporter: logs what flows through a pipeline, for troubleshooting configs.

`exporter` holds the config model, the component and its factory.
"""

from metricgate.exporters.debug.exporter import FACTORY, DebugExporter, DebugExporterConfig

__all__ = ["FACTORY", "DebugExporter", "DebugExporterConfig"]
