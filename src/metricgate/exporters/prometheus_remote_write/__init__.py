"""The `prometheus_remote_write` exporter: remote-write 1.0 with sharded, ordered sending.

`config.py` holds the config model, `wire.py` the hand-written protobuf encoding, `outputs.py` the
per-series state (cached label blocks of its output series, the entries a point becomes),
`encoder.py` what turns batches into per-shard fragments with it (delta accumulation, staleness,
duplicate series), `v2.py` the 2.0 conversion, `client.py` one HTTP request and its
classification, and `exporter.py` the component: a `LanedExporter` the sending core runs through
its ordered lanes (`pipeline/lanes.py`), which batch, retry, count and keep the disk queue.
"""

from metricgate.exporters.prometheus_remote_write.config import RemoteWriteExporterConfig
from metricgate.exporters.prometheus_remote_write.encoder import Encoder
from metricgate.exporters.prometheus_remote_write.exporter import FACTORY, RemoteWriteExporter
from metricgate.exporters.prometheus_remote_write.wire import Fragment

__all__ = ["FACTORY", "Encoder", "Fragment", "RemoteWriteExporter", "RemoteWriteExporterConfig"]
