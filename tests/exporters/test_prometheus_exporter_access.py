"""The `prometheus` exporter's page and the telemetry server with `auth`: a tenant scraping with
its own credentials sees only its own series, an admin sees every tenant's; the telemetry
server's pages are admin-only (probes excepted) and each use is in the audit log."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import requests

from tests.support.otlp_batches import gauges
from tests.support.poll import wait_until
from tests.support.ports import free_port
from tests.support.security import SecuredGateway, htpasswd, secured

USERS = {"alice": "alice-pw", "bob": "bob-pw", "ops": "ops-pw", "writer": "writer-pw"}

CONFIG = """
extensions:
  basicauth/readers: {{htpasswd: {{file: "{htpasswd}"}}}}
  bearertokenauth:
    tokens:
      - {{token: tok-a, principal: app-a, tenant: team-a}}
      - {{token: tok-b, principal: app-b, tenant: team-b}}
receivers:
  otlp:
    protocols:
      http: {{endpoint: "127.0.0.1:0", auth: {{authenticator: bearertokenauth}}}}
exporters:
  prometheus:
    endpoint: "127.0.0.1:0"
    auth: &readers {{authenticator: basicauth/readers}}
tenants:
  team-a: {{principals: [alice]}}
  team-b: {{principals: [bob]}}
  platform: {{principals: [ops], roles: [admin]}}
  writers: {{principals: [writer], roles: [write]}}
service:
  extensions: [basicauth/readers, bearertokenauth]
  pipelines:
    metrics: {{receivers: [otlp], processors: [cardinality_limit], exporters: [prometheus]}}
  telemetry:
    metrics: {{address: "127.0.0.1:{telemetry}", auth: *readers}}
processors:
  cardinality_limit: {{max_series_per_metric: 1000}}
"""


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[SecuredGateway]:
    path = tmp_path / "htpasswd"
    path.write_text(htpasswd(USERS))
    async with secured(CONFIG.format(htpasswd=path, telemetry=free_port())) as running:
        yield running


def page(gateway: SecuredGateway, user: str | None, path: str = "/metrics") -> requests.Response:
    port = gateway.service.exporter_queues["prometheus"].exporter.port  # type: ignore[attr-defined]
    auth = (user, USERS[user]) if user else None
    return requests.get(f"http://127.0.0.1:{port}{path}", auth=auth, timeout=10)


def telemetry(gateway: SecuredGateway, path: str, user: str | None = None) -> requests.Response:
    server = gateway.service.telemetry_server
    assert server is not None
    auth = (user, USERS[user]) if user else None
    return requests.get(f"http://127.0.0.1:{server.port}{path}", auth=auth, timeout=10)


def series(text: str, name: str) -> set[str]:
    return {line.split(" ")[0] for line in text.splitlines() if line.startswith(name)}


async def send(gateway: SecuredGateway, token: str, name: str) -> None:
    url = f"http://127.0.0.1:{gateway.port('otlp', 'http')}/v1/metrics"
    answer = await asyncio.to_thread(
        requests.post,
        url,
        data=gauges(2, name),
        headers={"Content-Type": "application/x-protobuf", "Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.content


async def test_each_tenant_scrapes_only_its_own_series(gateway: SecuredGateway) -> None:
    await send(gateway, "tok-a", "shared_up")
    await send(gateway, "tok-b", "shared_up")
    await send(gateway, "tok-b", "b_only")
    admin_page: list[str] = [""]

    async def scrape() -> None:
        admin_page[0] = (await asyncio.to_thread(page, gateway, "ops")).text

    await wait_until(lambda: len(series(admin_page[0], "shared_up")) == 4, scrape)

    alice = (await asyncio.to_thread(page, gateway, "alice")).text
    assert series(alice, "shared_up") == {
        'shared_up{i="0",tenant="team-a"}',
        'shared_up{i="1",tenant="team-a"}',
    }
    assert "b_only" not in alice and "team-b" not in alice
    bob = (await asyncio.to_thread(page, gateway, "bob")).text
    assert series(bob, "b_only") == {
        'b_only{i="0",tenant="team-b"}',
        'b_only{i="1",tenant="team-b"}',
    }
    assert "team-a" not in bob
    admin = (await asyncio.to_thread(page, gateway, "ops")).text
    assert len(series(admin, "shared_up")) == 4 and len(series(admin, "b_only")) == 2


async def test_scrape_refusals(gateway: SecuredGateway) -> None:
    missing = await asyncio.to_thread(page, gateway, None)
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"] == 'Basic realm="metricgate", charset="UTF-8"'
    port = gateway.service.exporter_queues["prometheus"].exporter.port  # type: ignore[attr-defined]
    wrong = await asyncio.to_thread(
        requests.get, f"http://127.0.0.1:{port}/metrics", auth=("alice", "nope"), timeout=10
    )
    assert (wrong.status_code, wrong.text) == (401, "unknown user or wrong password\n")
    no_read = await asyncio.to_thread(page, gateway, "writer")
    assert (no_read.status_code, no_read.text) == (
        403,
        "tenant 'writers' does not have the read role\n",
    )
    assert (await asyncio.to_thread(page, gateway, "alice")).status_code == 200


async def test_the_telemetry_server_is_admin_only_but_its_probes(
    gateway: SecuredGateway,
) -> None:
    # /debug/cardinality: a component's page (the cardinality limiter's), added by the host.
    for path in ("/healthz", "/readyz"):
        assert (await asyncio.to_thread(telemetry, gateway, path)).status_code == 200
    for path in ("/metrics", "/debug/cardinality"):
        assert (await asyncio.to_thread(telemetry, gateway, path)).status_code == 401
        refused = await asyncio.to_thread(telemetry, gateway, path, "alice")
        assert (refused.status_code, refused.text) == (
            403,
            "tenant 'team-a' does not have the admin role\n",
        )
        allowed = await asyncio.to_thread(telemetry, gateway, path, "ops")
        assert allowed.status_code == 200, allowed.text
    events = [json.loads(line) for line in gateway.audit.getvalue().splitlines()]
    admin = [e for e in events if e["event"] == "admin_access"]
    assert [(e["principal"], e["path"]) for e in admin] == [
        ("ops", "/metrics"),
        ("ops", "/debug/cardinality"),
    ]
    assert all("ops-pw" not in json.dumps(e) for e in events)


async def test_the_console_and_reload_are_admin_only(gateway: SecuredGateway) -> None:
    server = gateway.service.telemetry_server
    assert server is not None
    base = f"http://127.0.0.1:{server.port}"
    for user, status in ((None, 401), ("bob", 403), ("ops", 200)):
        auth = (user, USERS[user]) if user else None
        page = await asyncio.to_thread(requests.get, f"{base}/", auth=auth, timeout=10)
        assert page.status_code == status
        config = await asyncio.to_thread(
            requests.get, f"{base}/api/console/config", auth=auth, timeout=10
        )
        assert config.status_code == status
        if status == 200:
            assert "ops-pw" not in config.text and "a-secret" not in config.text
    reload = await asyncio.to_thread(
        requests.post, f"{base}/-/reload", auth=("bob", "bob-pw"), timeout=10
    )
    assert reload.status_code == 403
    reload = await asyncio.to_thread(
        requests.post, f"{base}/-/reload", auth=("ops", "ops-pw"), timeout=10
    )
    assert reload.status_code == 501  # reached the endpoint (hot reload is not there yet)
    assert '"method":"POST","path":"/-/reload"' in gateway.audit.getvalue()
