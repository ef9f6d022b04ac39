"""The `otlp` exporter: the model `Batch` back into OTLP, over gRPC or HTTP/protobuf.

`config.py` holds the config model, `encode.py` the wire encoder, `transport.py` the HTTP and
gRPC clients, `status.py` how answers map to retryable or permanent errors, and `exporter.py` the
component. Invariant: the exporter encodes and sends once per call; retrying belongs to the queue.
"""

from metricgate.exporters.otlp.config import OtlpExporterConfig, TlsConfig
from metricgate.exporters.otlp.exporter import FACTORY, OtlpExporter
from metricgate.wire.otlp.encode import OtlpEncoder

__all__ = ["FACTORY", "OtlpEncoder", "OtlpExporter", "OtlpExporterConfig", "TlsConfig"]
