"""metricgate: a plugin-based metrics gateway (OTLP in; relabel, limit, aggregate; fan out)."""

__version__ = "0.1.0"
