"""OTLP metrics on the wire: the private schema (`schema`), number points read at fixed offsets
(`layout`), request -> `Batch` (`decode` for protobuf, `json` for OTLP/JSON, `points` the
translation rules both share), `Batch` -> request (`encode`) and a backend's `google.rpc.Status`
(`status`).

Invariant: `encode` then `decode` gives back the batch's points; the receiver, the exporter and
the persistent queue all use these modules, never copies of them.
"""
