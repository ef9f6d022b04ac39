"""The remote-write exporter over TLS: a CA file with mutual TLS, and skipping verification."""

from __future__ import annotations

import contextlib
import shutil
from typing import Any

import pytest

from tests.support.batches import number_batch
from tests.support.poll import wait_until
from tests.support.remote_write import decode_compressed, exporter, metric_value, samples_of
from tests.support.tls import HttpsBackend, https_backend

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


SENT = "metricgate_exporter_sent_points_total"


async def _sent(backend: HttpsBackend, **settings: Any) -> float:
    """Export one point to `backend`; the samples the exporter counted as sent within 3 s."""
    endpoint = f"{backend.url}/api/v1/write"
    async with exporter(0, endpoint=endpoint, **settings) as (exp, host):
        await exp.export(number_batch({"a": 1.0}))
        with contextlib.suppress(AssertionError):  # not sent: the caller checks the count
            await wait_until(lambda: metric_value(host, SENT) > 0, timeout=3.0)
        return metric_value(host, SENT)


def _values(backend: HttpsBackend) -> list[float | str]:
    """The sample values the backend received."""
    return [value for body in backend.bodies for _, value, _ in samples_of(decode_compressed(body))]


async def test_https_with_ca_file_and_client_certificate(certs: dict[str, str]) -> None:
    tls = {
        "ca_file": certs["ca.pem"],
        "cert_file": certs["client.pem"],
        "key_file": certs["client.key"],
    }
    async with https_backend(certs, client_auth=True) as backend:
        assert await _sent(backend, tls=tls) == 1
    assert _values(backend) == [1.0]


async def test_https_unknown_ca_fails_unless_verification_is_skipped(certs: dict[str, str]) -> None:
    async with https_backend(certs, client_auth=False) as backend:
        assert await _sent(backend) == 0
        assert backend.bodies == []
        assert await _sent(backend, tls={"insecure_skip_verify": True}) == 1
    assert _values(backend) == [1.0]
