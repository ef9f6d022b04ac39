"""The `prometheus_remote_write` exporter: remote-write 1.0 with sharded, ordered sending.

`config.py` holds the config model, `fragments.py` the per-shard pieces of request bodies,
`outputs.py` the per-series state (cached label blocks of its output series, the entries a point
becomes), `encoder.py` what turns batches into per-shard fragments with the codec of
`metricgate.wire.remotewrite` (delta accumulation, staleness, duplicate series; the 2.0
conversion is `wire.remotewrite.v2`), `client.py` one HTTP request and its
classification, and `exporter.py` the component: a `LanedExporter` the sending core runs through
its ordered lanes (`pipeline/lanes.py`), which batch, retry, count and keep the disk queue.
"""

from metricgate.exporters.prometheus_remote_write.config import RemoteWriteExporterConfig
from metricgate.exporters.prometheus_remote_write.encoder import Encoder
from metricgate.exporters.prometheus_remote_write.exporter import FACTORY, RemoteWriteExporter
from metricgate.exporters.prometheus_remote_write.fragments import Fragment

__all__ = ["FACTORY", "Encoder", "Fragment", "RemoteWriteExporter", "RemoteWriteExporterConfig"]
