"""Fixtures of the exporter tests: moto's server standing in for AWS (CloudWatch, Logs), TLS
certificates (`certs`, made with openssl once per module), and a real remote-write backend
(`remote_write_backend`: Prometheus, then VictoriaMetrics, once per module each).

Modules that talk to AWS ask for `dummy_credentials` with
`pytestmark = pytest.mark.usefixtures("dummy_credentials")`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto.server import ThreadedMotoServer

from tests.support.prometheus import PrometheusServer, run_prometheus
from tests.support.tls import certificates
from tests.support.victoria import run_victoria_metrics


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    """A `ThreadedMotoServer` on a free port, for the whole test module."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def dummy_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials from the environment, never from the machine's AWS profile."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A CA, a server certificate for 127.0.0.1/localhost and a client certificate (file paths)."""
    return certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module", params=["prometheus", "victoria-metrics"])
def remote_write_backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PrometheusServer]:
    """A remote-write backend, queried through its Prometheus-compatible API."""
    if request.param == "victoria-metrics":
        with run_victoria_metrics(tmp_path_factory.mktemp("vm")) as victoria:
            yield victoria
        return
    with run_prometheus(
        tmp_path_factory.mktemp("rw"), extra_args=["--web.enable-remote-write-receiver"]
    ) as server:
        yield server
