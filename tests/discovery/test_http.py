"""http_sd_configs against a local HTTP SD endpoint: format, headers, auth, TLS, failures."""

from __future__ import annotations

import logging
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from metricgate.config.errors import format_validation_error
from metricgate.discovery import DiscoveryConfigs, HttpDiscoverer, HttpSDConfig, discoverers
from tests.discovery.collect import Received, running
from tests.discovery.http_endpoint import Endpoint, serve
from tests.support.tls import certificates


@pytest.fixture
async def endpoint() -> AsyncIterator[Endpoint]:
    found = Endpoint()
    runner = await serve(found)
    yield found
    await runner.cleanup()


def http_discoverer(url: str, received: Received, **keys: object) -> HttpDiscoverer:
    config = HttpSDConfig.model_validate({"url": url, "refresh_interval": "50ms", **keys})
    return HttpDiscoverer(config, "job/http/0", received.refreshed)


async def test_targets_labels_and_request_headers(endpoint: Endpoint) -> None:
    endpoint.groups([{"targets": ["a:1", "b:2"], "labels": {"env": "prod"}}, {"targets": ["c:3"]}])
    received = Received()
    discoverer = http_discoverer(
        endpoint.url, received, basic_auth={"username": "sd", "password": "secret"}
    )
    async with running(discoverer, received) as got:
        await got.wait_for(lambda: got.sends)
        assert [g.source for g in got.sends[0]] == [
            f"job/http/0/{endpoint.url}:0",
            f"job/http/0/{endpoint.url}:1",
        ]
        assert got.targets() == [
            {"__address__": "a:1", "env": "prod", "__meta_url": endpoint.url},
            {"__address__": "b:2", "env": "prod", "__meta_url": endpoint.url},
            {"__address__": "c:3", "__meta_url": endpoint.url},
        ]
    request = endpoint.requests[0]
    assert request.headers["Accept"] == "application/json"
    assert request.headers["X-Prometheus-Refresh-Interval-Seconds"] == "0.05"
    assert request.headers["Authorization"] == "Basic c2Q6c2VjcmV0"
    assert request.headers["User-Agent"].startswith("metricgate/")


async def test_changes_are_sent_and_vanished_groups_removed(endpoint: Endpoint) -> None:
    endpoint.groups([{"targets": ["a:1"]}, {"targets": ["b:1"]}])
    received = Received()
    async with running(http_discoverer(endpoint.url, received), received) as got:
        await got.wait_for(lambda: got.addresses() == ["a:1", "b:1"])
        sends = len(got.sends)
        await got.wait_for(lambda: len(got.refreshes) >= 4)
        assert len(got.sends) == sends  # unchanged answers send nothing
        endpoint.groups([{"targets": ["a:1", "a:2"]}])
        await got.wait_for(lambda: got.addresses() == ["a:1", "a:2"])
        assert [(g.source.rsplit(":", 1)[1], len(g.targets)) for g in got.sends[-1]] == [
            ("0", 2),
            ("1", 0),
        ]


@pytest.mark.parametrize(
    ("status", "content_type", "body", "error"),
    [
        (503, "application/json", "[]", "server returned HTTP status 503"),
        (200, "text/plain", "[]", "unsupported content type 'text/plain'"),
        (200, "application/json", "[{", "Expecting property name"),
        (200, "application/json", '[{"targets": "a:1"}]', "[0].targets: expected a list"),
        (200, "application/json", "[null]", "[0]: expected a mapping"),
    ],
)
async def test_a_bad_answer_keeps_the_last_targets(
    endpoint: Endpoint,
    caplog: pytest.LogCaptureFixture,
    status: int,
    content_type: str,
    body: str,
    error: str,
) -> None:
    endpoint.groups([{"targets": ["a:1"]}])
    received = Received()
    async with running(http_discoverer(endpoint.url, received), received) as got:
        await got.wait_for(lambda: got.addresses() == ["a:1"])
        with caplog.at_level(logging.WARNING, "metricgate.discovery"):
            endpoint.status, endpoint.content_type, endpoint.body = status, content_type, body
            failed_before = got.refreshes.count(("http", True))
            await got.wait_for(lambda: got.refreshes.count(("http", True)) >= failed_before + 3)
        assert got.addresses() == ["a:1"]
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        # Logged once, not on every failed refresh.
        assert len(warnings) == 1, warnings
        assert endpoint.url in warnings[0] and error in warnings[0]

        endpoint.status, endpoint.content_type = 200, "application/json; charset=utf-8"
        endpoint.groups([{"targets": ["b:1"]}])
        await got.wait_for(lambda: got.addresses() == ["b:1"])


async def test_unreachable_endpoint_at_start_sends_an_empty_first_update() -> None:
    received = Received()
    async with running(http_discoverer("http://127.0.0.1:9/sd", received), received) as got:
        await got.wait_for(lambda: got.sends)
        assert got.sends == [[]]
        assert got.refreshes[0] == ("http", True)


async def test_https_with_a_private_ca_and_bearer_token_file(tmp_path: Path) -> None:
    certs = certificates(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certs["server.pem"], certs["server.key"])
    endpoint = Endpoint()
    endpoint.groups([{"targets": ["a:1"]}])
    runner = await serve(endpoint, context)
    token = tmp_path / "token"
    token.write_text("t0k3n\n")
    try:
        received = Received()
        discoverer = http_discoverer(
            endpoint.url,
            received,
            bearer_token_file=str(token),
            tls_config={"ca_file": certs["ca.pem"]},
        )
        async with running(discoverer, received) as got:
            await got.wait_for(lambda: got.addresses() == ["a:1"])
        assert endpoint.requests[0].headers["Authorization"] == "Bearer t0k3n"

        # Without the CA the server's certificate is not trusted: nothing is discovered.
        received = Received()
        async with running(http_discoverer(endpoint.url, received), received) as got:
            await got.wait_for(lambda: got.refreshes)
            assert got.refreshes[0] == ("http", True) and got.groups == {}
    finally:
        await runner.cleanup()


def test_builder_and_defaults() -> None:
    configs = DiscoveryConfigs.model_validate(
        {"http_sd_configs": [{"url": "http://sd:8080/targets"}]}
    )
    [found] = discoverers(configs, "job")
    assert isinstance(found, HttpDiscoverer)
    assert found.config.refresh_interval == 60.0
    assert found.config.follow_redirects is True
    assert found.name == "job/http/0"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({}, "http_sd_configs[0].url: required key is missing"),
        ({"url": "sd:8080/targets"}, "http_sd_configs[0].url: expected an http:// or https:// URL"),
        ({"url": "ftp://sd/t"}, "http_sd_configs[0].url: expected an http:// or https:// URL"),
        ({"url": "http://sd/t", "refresh_interval": -1}, "http_sd_configs[0].refresh_interval"),
        (
            {"url": "http://sd/t", "proxy_url": "http://proxy:3128"},
            "http_sd_configs[0]: proxy_url is not supported",
        ),
        ({"url": "http://sd/t", "tls": {}}, "http_sd_configs[0].tls: unknown key"),
    ],
)
def test_config_errors_name_the_key(entry: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        DiscoveryConfigs.model_validate({"http_sd_configs": [entry]})
    problems = format_validation_error(caught.value, "", DiscoveryConfigs)
    assert any(problem.startswith(message) for problem in problems), problems


async def test_a_missing_ca_file_fails_refreshes_until_it_appears(tmp_path: Path) -> None:
    certs = certificates(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certs["server.pem"], certs["server.key"])
    endpoint = Endpoint()
    endpoint.groups([{"targets": ["a:1"]}])
    runner = await serve(endpoint, context)
    ca = tmp_path / "later" / "ca.pem"
    try:
        received = Received()
        discoverer = http_discoverer(endpoint.url, received, tls_config={"ca_file": str(ca)})
        async with running(discoverer, received) as got:
            await got.wait_for(lambda: got.refreshes.count(("http", True)) >= 2)
            ca.parent.mkdir()
            ca.write_bytes(Path(certs["ca.pem"]).read_bytes())
            await got.wait_for(lambda: got.addresses() == ["a:1"])
    finally:
        await runner.cleanup()
