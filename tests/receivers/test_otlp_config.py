"""The otlp receiver's config: the Collector's shape, defaults, and errors that name the key."""

from __future__ import annotations

import pytest

from metricgate.config import load_config_text
from metricgate.errors import ConfigError
from metricgate.receivers.otlp import OtlpReceiverConfig
from tests.support.capture import registry_with_capture

PIPELINE = """
exporters: {capture: {}}
service:
  pipelines: {metrics: {receivers: [otlp], exporters: [capture]}}
"""


def receiver_config(text: str) -> OtlpReceiverConfig:
    config = load_config_text(text + PIPELINE, registry_with_capture(), {})
    found = config.receivers["otlp"].config
    assert isinstance(found, OtlpReceiverConfig)
    return found


def test_null_or_empty_protocol_means_defaults() -> None:
    config = receiver_config("receivers: {otlp: {protocols: {grpc: null, http: {}}}}")
    assert config.protocols.grpc is not None and config.protocols.http is not None
    assert config.protocols.grpc.endpoint == "localhost:4317"
    assert config.protocols.grpc.max_receive_bytes == 20 * 1024 * 1024
    http = config.protocols.http
    assert (http.endpoint, http.metrics_url_path) == ("localhost:4318", "/v1/metrics")
    assert http.max_request_body_size == 20 * 1024 * 1024
    assert http.max_decompressed_size == 64 * 1024 * 1024


def test_absent_protocol_is_disabled_and_sizes_parse() -> None:
    config = receiver_config(
        "receivers: {otlp: {protocols: {http: {endpoint: '0.0.0.0:0', "
        "max_request_body_size: 1MiB, max_decompressed_size: 2MB}}}}"
    )
    assert config.protocols.grpc is None
    assert config.protocols.http is not None
    assert config.protocols.http.max_request_body_size == 1024 * 1024
    assert config.protocols.http.max_decompressed_size == 2_000_000


def test_collector_spelling_of_the_grpc_limit() -> None:
    config = receiver_config("receivers: {otlp: {protocols: {grpc: {max_recv_msg_size_mib: 4}}}}")
    assert config.protocols.grpc is not None
    assert config.protocols.grpc.max_receive_bytes == 4 * 1024 * 1024


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("receivers: {otlp: {}}", "receivers.otlp.protocols"),
        ("receivers: {otlp: {protocols: {}}}", "at least one of protocols.grpc"),
        ("receivers: {otlp: {protocols: {http: {endpoint: nope}}}}", "expected host:port"),
        ("receivers: {otlp: {protocols: {http: {metrics_url_path: v1}}}}", "starting with '/'"),
        ("receivers: {otlp: {protocols: {http: {max_request_body_size: 0}}}}", "greater than 0"),
        ("receivers: {otlp: {protocols: {grpc: {tls: {}}}}}", "tls"),
        (
            "receivers: {otlp: {protocols: {grpc: {endpoint: 'a:5'}, http: {endpoint: 'a:5'}}}}",
            "different endpoints",
        ),
    ],
)
def test_errors_name_the_key(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        receiver_config(text)
    assert expected in str(caught.value)
