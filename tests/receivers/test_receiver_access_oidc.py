"""An OTLP/HTTP listener with the `oidc` authenticator: JWTs signed by a key from a file; the tenant
from a claim; expired, foreign and tenant-less tokens refused with their status and message."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from google.rpc.status_pb2 import Status

from tests.support.capture import CaptureExporter
from tests.support.otlp_batches import gauges
from tests.support.security import SecuredGateway, secured

ISSUER = "https://idp.example"

CONFIG = """
extensions:
  oidc: {{issuer_url: "{issuer}", audience: metricgate, tenant_claim: org,
          public_keys_file: "{keys}", clock_skew: 5s}}
receivers:
  otlp:
    protocols:
      http: {{endpoint: "127.0.0.1:0", auth: {{authenticator: oidc}}}}
exporters:
  capture: {{}}
service:
  extensions: [oidc]
  pipelines:
    metrics: {{receivers: [otlp], exporters: [capture]}}
  telemetry:
    metrics: {{address: ""}}
"""

KEY = ec.generate_private_key(ec.SECP256R1())


def token(key: ec.EllipticCurvePrivateKey = KEY, **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": ISSUER, "aud": "metricgate", "sub": "svc-1", "org": "team-a", "iat": now}
    body["exp"] = now + 300
    body.update(claims)
    return jwt.encode({k: v for k, v in body.items() if v is not None}, key, algorithm="ES256")


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[SecuredGateway]:
    keys = tmp_path / "issuer.pem"
    keys.write_bytes(
        KEY.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    async with secured(CONFIG.format(issuer=ISSUER, keys=keys)) as running:
        yield running


async def post(gateway: SecuredGateway, jwt_text: str) -> tuple[int, str]:
    answer = await asyncio.to_thread(
        requests.post,
        f"http://127.0.0.1:{gateway.port('otlp', 'http')}/v1/metrics",
        data=gauges(1),
        headers={"Content-Type": "application/x-protobuf", "Authorization": f"Bearer {jwt_text}"},
        timeout=10,
    )
    message = Status.FromString(answer.content).message if answer.status_code != 200 else ""
    return answer.status_code, message


async def test_a_valid_token_writes_as_its_tenant_claim(gateway: SecuredGateway) -> None:
    assert await post(gateway, token()) == (200, "")
    [batch] = CaptureExporter.instances["capture"].batches
    assert {group.metric.resource.get("tenant.id") for group in batch} == {"team-a"}


async def test_bad_tokens_are_refused(gateway: SecuredGateway) -> None:
    expired = await post(gateway, token(exp=int(time.time()) - 3600, iat=int(time.time()) - 7200))
    assert expired[0] == 401 and "expired" in expired[1]
    stranger = await post(gateway, token(ec.generate_private_key(ec.SECP256R1())))
    assert stranger[0] == 401
    wrong_audience = await post(gateway, token(aud="someone-else"))
    assert wrong_audience[0] == 401 and "audience" in wrong_audience[1]
    no_tenant = await post(gateway, token(org=None))
    assert no_tenant[0] == 403 and "org" in no_tenant[1]
    assert CaptureExporter.instances["capture"].batches == []
    assert await post(gateway, token()) == (200, "")
