"""Fixtures of the exporter tests: TLS certificates (`certs`, made with openssl once per
module), and a real remote-write backend (`remote_write_backend`: Prometheus, then
VictoriaMetrics, once per module each). moto's AWS fixtures are in `tests/conftest.py`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.prometheus import PrometheusServer, run_prometheus
from tests.support.tls import certificates
from tests.support.victoria import run_victoria_metrics


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
