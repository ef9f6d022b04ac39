"""The remote-write exporter over TLS: a CA file with mutual TLS, and skipping verification."""

from __future__ import annotations

import contextlib
import shutil
from typing import Any

import pytest

from tests.exporters.test_remote_write_sending import exporter, metric_value, until
from tests.support.batches import number_batch
from tests.support.tls import https_backend

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


SENT = "metricgate_exporter_sent_points_total"


async def _sent(url: str, **settings: Any) -> float:
    """Export one point to `url`; the samples the exporter counted as sent within 3 s."""
    async with exporter(0, endpoint=f"{url}/api/v1/write", **settings) as (exp, host):
        await exp.export(number_batch({"a": 1.0}))
        with contextlib.suppress(AssertionError):  # not sent: the caller checks the count
            await until(lambda: metric_value(host, SENT) > 0, 3.0)
        return metric_value(host, SENT)


async def test_https_with_ca_file_and_client_certificate(certs: dict[str, str]) -> None:
    tls = {
        "ca_file": certs["ca.pem"],
        "cert_file": certs["client.pem"],
        "key_file": certs["client.key"],
    }
    async with https_backend(certs, client_auth=True) as url:
        assert await _sent(url, tls=tls) == 1


async def test_https_unknown_ca_fails_unless_verification_is_skipped(certs: dict[str, str]) -> None:
    async with https_backend(certs, client_auth=False) as url:
        assert await _sent(url) == 0
        assert await _sent(url, tls={"insecure_skip_verify": True}) == 1
