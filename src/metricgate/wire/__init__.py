"""Protocol codecs: how metrics look on the wire, independent of any component.

- `protowire`: the one varint / length-delimited field encoder and reader;
- `descriptors`: the one way to declare protobuf messages in code (private descriptor pools);
- `otlp`: the OTLP metrics schema, `Batch` <-> request bytes (protobuf and JSON) and the
  `google.rpc.Status` a backend answers with; used by the otlp receiver and exporter and by the
  pipeline's persistent queue;
- `remotewrite`: the remote-write 1.0/2.0 schemas, the 1.0 entry layout the receiver reads in
  place, the entries the exporter writes and the 1.0 -> 2.0 body conversion;
- `exposition`: Prometheus text 0.0.4, OpenMetrics 1.0 and the delimited `MetricFamily` protobuf
  format.

A codec knows bytes, the parsed form of the protocol and the data model it reads into or writes
from (`metricgate.model`), never a component, the pipeline or the config.

Invariant: nothing here imports from `metricgate` outside `metricgate.wire` and `metricgate.model`,
so every layer above the model may use a codec.
"""
