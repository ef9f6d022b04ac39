"""kubernetes_sd_configs roles endpoints and endpointslice against a fake API server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from metricgate.discovery import KubernetesDiscoverer, KubernetesSDConfig
from tests.discovery.collect import Received, running
from tests.discovery.fake_kubernetes import FakeKubernetes, Object, pod

META = "__meta_kubernetes_"


@pytest.fixture
async def api() -> AsyncIterator[FakeKubernetes]:
    fake = FakeKubernetes()
    await fake.start()
    yield fake
    await fake.stop()


def kube(api: FakeKubernetes, received: Received, role: str, **keys: Any) -> KubernetesDiscoverer:
    config = KubernetesSDConfig.model_validate({"api_server": api.url, "role": role, **keys})
    return KubernetesDiscoverer(config, "job/kubernetes/0", received.refreshed, retry=0.05)


def service(labels: dict[str, str] | None = None) -> Object:
    return {
        "metadata": {
            "name": "web",
            "namespace": "shop",
            "labels": labels or {"tier": "frontend"},
            "annotations": {"prometheus.io/port": "9090"},
        },
        "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
    }


def web_pod() -> Object:
    return pod(
        "web-1",
        namespace="shop",
        ip="10.1.0.5",
        labels={"app": "web"},
        containers=[
            {
                "name": "app",
                "image": "web:2",
                "ports": [
                    {"name": "http", "containerPort": 8080, "protocol": "TCP"},
                    {"name": "metrics", "containerPort": 9090, "protocol": "TCP"},
                ],
            }
        ],
    )


def endpoints() -> Object:
    return {
        "metadata": {"name": "web", "namespace": "shop", "labels": {"svc": "web"}},
        "subsets": [
            {
                "addresses": [
                    {
                        "ip": "10.1.0.5",
                        "nodeName": "node-1",
                        "targetRef": {"kind": "Pod", "name": "web-1", "namespace": "shop"},
                    }
                ],
                "notReadyAddresses": [{"ip": "10.9.9.9", "hostname": "external"}],
                "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            }
        ],
    }


POD_LABELS = {
    META + "pod_name": "web-1",
    META + "pod_ip": "10.1.0.5",
    META + "pod_ready": "true",
    META + "pod_phase": "Running",
    META + "pod_node_name": "node-1",
    META + "pod_host_ip": "192.168.0.10",
    META + "pod_uid": "uid-web-1",
    META + "pod_label_app": "web",
    META + "pod_labelpresent_app": "true",
}


async def test_endpoints_with_service_and_pod_labels(api: FakeKubernetes) -> None:
    api.put("services", service())
    api.put("pods", web_pod())
    api.put("endpoints", endpoints())
    received = Received()
    async with running(kube(api, received, "endpoints"), received) as got:
        await got.wait_for(lambda: got.sends)
        [group] = got.sends[0]
        assert group.source == "job/kubernetes/0/endpoints/shop/web"
        assert dict(group.labels) == {
            META + "namespace": "shop",
            META + "endpoints_name": "web",
            META + "endpoints_label_svc": "web",
            META + "endpoints_labelpresent_svc": "true",
            META + "service_name": "web",
            META + "service_label_tier": "frontend",
            META + "service_labelpresent_tier": "true",
            META + "service_annotation_prometheus_io_port": "9090",
            META + "service_annotationpresent_prometheus_io_port": "true",
        }
        assert [dict(t) for t in group.targets] == [
            {
                "__address__": "10.1.0.5:8080",
                META + "endpoint_port_name": "http",
                META + "endpoint_port_protocol": "TCP",
                META + "endpoint_ready": "true",
                META + "endpoint_address_target_kind": "Pod",
                META + "endpoint_address_target_name": "web-1",
                META + "endpoint_node_name": "node-1",
                **POD_LABELS,
                META + "pod_container_name": "app",
                META + "pod_container_image": "web:2",
                META + "pod_container_port_name": "http",
                META + "pod_container_port_number": "8080",
                META + "pod_container_port_protocol": "TCP",
            },
            {
                "__address__": "10.9.9.9:8080",
                META + "endpoint_port_name": "http",
                META + "endpoint_port_protocol": "TCP",
                META + "endpoint_ready": "false",
                META + "endpoint_hostname": "external",
            },
            # The pod's port no endpoint port covers becomes a target of its own.
            {
                "__address__": "10.1.0.5:9090",
                **POD_LABELS,
                META + "pod_container_name": "app",
                META + "pod_container_image": "web:2",
                META + "pod_container_port_name": "metrics",
                META + "pod_container_port_number": "9090",
                META + "pod_container_port_protocol": "TCP",
            },
        ]
        assert {path for path, _, _ in api.requests} == {
            "/api/v1/endpoints",
            "/api/v1/services",
            "/api/v1/pods",
        }


async def test_service_and_pod_changes_rebuild_the_endpoints(api: FakeKubernetes) -> None:
    api.put("endpoints", endpoints())
    received = Received()
    async with running(kube(api, received, "endpoints"), received) as got:
        await got.wait_for(lambda: got.sends)
        ready = got.targets()[0]
        assert META + "pod_name" not in ready and META + "service_name" not in ready

        api.put("pods", web_pod())  # the pod shows up after its endpoints
        await got.wait_for(lambda: META + "pod_name" in got.targets()[0])
        assert "10.1.0.5:9090" in got.addresses()

        api.put("services", service({"tier": "backend"}))
        await got.wait_for(lambda: got.targets()[0].get(META + "service_label_tier") == "backend")

        api.delete("pods", "shop", "web-1")
        await got.wait_for(lambda: META + "pod_name" not in got.targets()[0])
        assert got.addresses() == ["10.1.0.5:8080", "10.9.9.9:8080"]

        api.delete("endpoints", "shop", "web")
        await got.wait_for(lambda: got.addresses() == [])


async def test_endpoints_selectors_apply_to_each_kind(api: FakeKubernetes) -> None:
    received = Received()
    selectors = [
        {"role": "endpoints", "label": "svc=web"},
        {"role": "service", "label": "tier=frontend"},
        {"role": "pod", "field": "spec.nodeName=node-1"},
    ]
    async with running(kube(api, received, "endpoints", selectors=selectors), received) as got:
        await got.wait_for(lambda: got.sends)
    lists = {path: q for path, q, _ in api.requests if "watch" not in q}
    assert lists["/api/v1/endpoints"].get("labelSelector") == "svc=web"
    assert lists["/api/v1/services"].get("labelSelector") == "tier=frontend"
    assert lists["/api/v1/pods"].get("fieldSelector") == "spec.nodeName=node-1"


async def test_endpointslices(api: FakeKubernetes) -> None:
    api.put("services", service())
    api.put("pods", web_pod())
    api.put(
        "endpointslices",
        {
            "metadata": {
                "name": "web-abcde",
                "namespace": "shop",
                "labels": {"kubernetes.io/service-name": "web"},
            },
            "addressType": "IPv4",
            "endpoints": [
                {
                    "addresses": ["10.1.0.5"],
                    "conditions": {"ready": True, "serving": True, "terminating": False},
                    "hostname": "web-1",
                    "nodeName": "node-1",
                    "targetRef": {"kind": "Pod", "name": "web-1", "namespace": "shop"},
                    "deprecatedTopology": {"kubernetes.io/hostname": "node-1"},
                }
            ],
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP", "appProtocol": "http"}],
        },
    )
    received = Received()
    async with running(kube(api, received, "endpointslice"), received) as got:
        await got.wait_for(lambda: got.sends)
        [group] = got.sends[0]
        assert group.source == "job/kubernetes/0/endpointslice/shop/web-abcde"
        assert group.labels[META + "endpointslice_name"] == "web-abcde"
        assert group.labels[META + "endpointslice_address_type"] == "IPv4"
        assert group.labels[META + "service_name"] == "web"
        first, unbound = (dict(t) for t in group.targets)
        assert first == {
            "__address__": "10.1.0.5:8080",
            META + "endpointslice_port_name": "http",
            META + "endpointslice_port_protocol": "TCP",
            META + "endpointslice_port": "8080",
            META + "endpointslice_port_app_protocol": "http",
            META + "endpointslice_endpoint_conditions_ready": "true",
            META + "endpointslice_endpoint_conditions_serving": "true",
            META + "endpointslice_endpoint_conditions_terminating": "false",
            META + "endpointslice_endpoint_hostname": "web-1",
            META + "endpointslice_address_target_kind": "Pod",
            META + "endpointslice_address_target_name": "web-1",
            META + "endpointslice_endpoint_topology_kubernetes_io_hostname": "node-1",
            META + "endpointslice_endpoint_topology_present_kubernetes_io_hostname": "true",
            **POD_LABELS,
            META + "pod_container_name": "app",
            META + "pod_container_image": "web:2",
            META + "pod_container_port_name": "http",
            META + "pod_container_port_number": "8080",
            META + "pod_container_port_protocol": "TCP",
        }
        assert unbound["__address__"] == "10.1.0.5:9090"
        assert "/apis/discovery.k8s.io/v1/endpointslices" in {p for p, _, _ in api.requests}

        api.put("services", service({"tier": "backend"}))
        await got.wait_for(lambda: got.targets()[0].get(META + "service_label_tier") == "backend")
