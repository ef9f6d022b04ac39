"""Protocol codecs: how metrics look on the wire, independent of any component.

Each subpackage reads (and, where metricgate writes the format, writes) one protocol: today
`exposition` (Prometheus text 0.0.4, OpenMetrics 1.0 and the delimited `MetricFamily` protobuf
format); the OTLP and remote-write codecs move here too. A codec knows bytes and the parsed form
of the protocol, never the pipeline's model or a component.

Invariant: nothing here imports from `metricgate` outside `metricgate.wire`, so every layer may
use a codec.
"""
