"""kubernetes_sd_configs keys: errors naming the key, defaults, and the in-cluster connection."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from metricgate.config.errors import format_validation_error
from metricgate.discovery import (
    DiscoveryConfigs,
    KubernetesDiscoverer,
    KubernetesSDConfig,
    discoverers,
)
from tests.discovery.collect import Received, running
from tests.discovery.fake_kubernetes import FakeKubernetes, pod
from tests.support.tls import certificates


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({}, "kubernetes_sd_configs[0].role: required key is missing"),
        (
            {"role": "pods"},
            "kubernetes_sd_configs[0].role: role 'pods' is unknown "
            "(expected one of: pod, endpoints, endpointslice)",
        ),
        (
            {"role": "node"},
            "kubernetes_sd_configs[0].role: role 'node' is not supported by metricgate",
        ),
        (
            {"role": "pod", "kubeconfig_file": "/root/.kube/config"},
            "kubernetes_sd_configs[0].kubeconfig_file: kubeconfig_file is not supported",
        ),
        (
            {"role": "pod", "selectors": [{"role": "service", "label": "a=b"}]},
            "kubernetes_sd_configs[0].selectors: pod role supports only pod selectors",
        ),
        (
            {"role": "endpoints", "selectors": [{"role": "pod"}, {"role": "pod"}]},
            "kubernetes_sd_configs[0].selectors: duplicated selector role: pod",
        ),
        (
            {"role": "pod", "authorization": {"credentials": "x"}},
            "kubernetes_sd_configs[0]: to use custom HTTP client settings, give the api_server",
        ),
        (
            {
                "role": "pod",
                "api_server": "https://k8s:6443",
                "namespaces": {"own_namespace": True},
            },
            "kubernetes_sd_configs[0]: cannot use api_server and namespaces.own_namespace",
        ),
        (
            {"role": "pod", "api_server": "k8s:6443"},
            "kubernetes_sd_configs[0].api_server: expected an http",
        ),
        (
            {"role": "pod", "namespaces": {"name": ["a"]}},
            "kubernetes_sd_configs[0].namespaces.name: unknown key",
        ),
        (
            {"role": "pod", "attach_metadata": {"node": True}},
            "kubernetes_sd_configs[0].attach_metadata.node: node metadata is not supported",
        ),
    ],
)
def test_config_errors_name_the_key(entry: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        DiscoveryConfigs.model_validate({"kubernetes_sd_configs": [entry]})
    problems = format_validation_error(caught.value, "", DiscoveryConfigs)
    assert any(problem.startswith(message) for problem in problems), problems


def test_builder_and_defaults() -> None:
    configs = DiscoveryConfigs.model_validate(
        {
            "kubernetes_sd_configs": [
                {"role": "pod"},
                {"role": "endpoints", "api_server": "https://k8s:6443/", "bearer_token": "t"},
            ]
        }
    )
    first, second = discoverers(configs, "job")
    assert isinstance(first, KubernetesDiscoverer) and isinstance(second, KubernetesDiscoverer)
    assert first.name == "job/kubernetes/0" and second.name == "job/kubernetes/1"
    assert first.config.namespaces.names == [] and first.config.selectors == []
    assert second.config.api_server == "https://k8s:6443"


async def test_in_cluster_service_account_and_own_namespace(tmp_path: Path) -> None:
    certs = certificates(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certs["server.pem"], certs["server.key"])
    api = FakeKubernetes(token="sa-token-1")
    await api.start(context)
    account = tmp_path / "serviceaccount"
    account.mkdir()
    (account / "token").write_text("sa-token-1")
    (account / "ca.crt").write_bytes(Path(certs["ca.pem"]).read_bytes())
    (account / "namespace").write_text("monitoring\n")
    api.put("pods", pod("mine", namespace="monitoring", ip="10.0.0.1"))
    api.put("pods", pod("other", namespace="default", ip="10.0.0.2"))
    port = api.url.rsplit(":", 1)[1]
    config = KubernetesSDConfig.model_validate(
        {"role": "pod", "namespaces": {"own_namespace": True, "names": ["extra"]}}
    )
    received = Received()
    discoverer = KubernetesDiscoverer(
        config,
        "k",
        received.refreshed,
        service_account_dir=str(account),
        environ={"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": port},
        retry=0.05,
    )
    try:
        async with running(discoverer, received) as got:
            await got.wait_for(lambda: got.sends)
            assert got.addresses() == ["10.0.0.1:8080"]
            # The token is read on every request: a rotated token is used from then on.
            (account / "token").write_text("sa-token-2")
            api.token = "sa-token-2"
            api.end_watches()
            await got.wait_for(lambda: any(a == "Bearer sa-token-2" for _, _, a in api.requests))
            api.put("pods", pod("new", namespace="monitoring", ip="10.0.0.3"))
            await got.wait_for(lambda: got.addresses() == ["10.0.0.1:8080", "10.0.0.3:8080"])
        paths = {path for path, _, _ in api.requests}
        assert paths == {"/api/v1/namespaces/extra/pods", "/api/v1/namespaces/monitoring/pods"}
    finally:
        await api.stop()


async def test_outside_a_cluster_without_api_server_fails_and_says_why(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = KubernetesSDConfig.model_validate({"role": "pod"})
    received = Received()
    discoverer = KubernetesDiscoverer(
        config, "k", received.refreshed, service_account_dir=str(tmp_path), environ={}, retry=0.01
    )
    async with running(discoverer, received) as got:
        await got.wait_for(lambda: len(got.refreshes) >= 2)
    assert set(got.refreshes) == {("kubernetes", True)} and got.sends == []
    assert "KUBERNETES_SERVICE_HOST" in caplog.text
