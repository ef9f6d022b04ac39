"""kubernetes_sd_configs role: pod, list then watch against a fake API server."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from metricgate.discovery import KubernetesDiscoverer, KubernetesSDConfig
from tests.discovery.collect import Received, running
from tests.discovery.fake_kubernetes import FakeKubernetes, pod

META = "__meta_kubernetes_"


@pytest.fixture
async def api() -> AsyncIterator[FakeKubernetes]:
    fake = FakeKubernetes()
    await fake.start()
    yield fake
    await fake.stop()


def kube(api: FakeKubernetes, received: Received, **keys: Any) -> KubernetesDiscoverer:
    config = KubernetesSDConfig.model_validate({"api_server": api.url, "role": "pod", **keys})
    return KubernetesDiscoverer(config, "job/kubernetes/0", received.refreshed, retry=0.05)


async def test_pod_labels_as_prometheus_gives_them(api: FakeKubernetes) -> None:
    api.put(
        "pods",
        pod(
            "web-7d9f",
            namespace="shop",
            labels={"app": "web", "app.kubernetes.io/name": "web", "empty": ""},
            annotations={"prometheus.io/scrape": "true"},
            containers=[
                {
                    "name": "app",
                    "image": "shop/web:1.2",
                    "ports": [
                        {"name": "http", "containerPort": 8080, "protocol": "TCP"},
                        {"name": "metrics", "containerPort": 9090, "protocol": "TCP"},
                    ],
                },
                {"name": "sidecar", "image": "envoy:1"},
            ],
            containerStatuses=[
                {"name": "app", "containerID": "containerd://abc"},
                {"name": "sidecar", "containerID": "containerd://def"},
            ],
        ),
    )
    obj = api.objects["pods"]["shop/web-7d9f"]
    obj["metadata"]["ownerReferences"] = [
        {"kind": "Node", "name": "n", "controller": False},
        {"kind": "ReplicaSet", "name": "web-7d9f", "controller": True},
    ]
    obj["spec"]["initContainers"] = [{"name": "migrate", "image": "shop/migrate:1"}]
    api.put("pods", pod("pending", namespace="shop", ip=""))  # no IP yet: no targets

    received = Received()
    async with running(kube(api, received), received) as got:
        await got.wait_for(lambda: got.sends)
        [first] = got.sends
        assert [g.source for g in first] == ["job/kubernetes/0/pod/shop/web-7d9f"]
        [group] = first
        assert dict(group.labels) == {
            META + "namespace": "shop",
            META + "pod_name": "web-7d9f",
            META + "pod_ip": "10.1.0.1",
            META + "pod_ready": "true",
            META + "pod_phase": "Running",
            META + "pod_node_name": "node-1",
            META + "pod_host_ip": "192.168.0.10",
            META + "pod_uid": "uid-web-7d9f",
            META + "pod_controller_kind": "ReplicaSet",
            META + "pod_controller_name": "web-7d9f",
            META + "pod_label_app": "web",
            META + "pod_labelpresent_app": "true",
            META + "pod_label_app_kubernetes_io_name": "web",
            META + "pod_labelpresent_app_kubernetes_io_name": "true",
            META + "pod_labelpresent_empty": "true",
            META + "pod_annotation_prometheus_io_scrape": "true",
            META + "pod_annotationpresent_prometheus_io_scrape": "true",
        }
        assert [dict(t) for t in group.targets] == [
            {
                "__address__": "10.1.0.1:8080",
                META + "pod_container_name": "app",
                META + "pod_container_id": "containerd://abc",
                META + "pod_container_image": "shop/web:1.2",
                META + "pod_container_init": "false",
                META + "pod_container_port_name": "http",
                META + "pod_container_port_number": "8080",
                META + "pod_container_port_protocol": "TCP",
            },
            {
                "__address__": "10.1.0.1:9090",
                META + "pod_container_name": "app",
                META + "pod_container_id": "containerd://abc",
                META + "pod_container_image": "shop/web:1.2",
                META + "pod_container_init": "false",
                META + "pod_container_port_name": "metrics",
                META + "pod_container_port_number": "9090",
                META + "pod_container_port_protocol": "TCP",
            },
            {
                "__address__": "10.1.0.1",
                META + "pod_container_name": "sidecar",
                META + "pod_container_id": "containerd://def",
                META + "pod_container_image": "envoy:1",
                META + "pod_container_init": "false",
            },
            {
                "__address__": "10.1.0.1",
                META + "pod_container_name": "migrate",
                META + "pod_container_image": "shop/migrate:1",
                META + "pod_container_init": "true",
            },
        ]


async def test_paged_lists_are_followed_to_the_end(api: FakeKubernetes) -> None:
    for index in range(5):
        api.put("pods", pod(f"p{index}", ip=f"10.0.0.{index}"))
    received = Received()
    async with running(kube(api, received), received) as got:
        await got.wait_for(lambda: got.sends)
        assert len(got.groups) == 5
    pages = [q for _, q, _ in api.requests if "watch" not in q]
    assert [q.get("continue") for q in pages] == [None, "2", "4"]
    assert all(q["limit"] == "500" for q in pages)


async def test_added_modified_deleted_events(api: FakeKubernetes) -> None:
    api.put("pods", pod("a", ip="10.0.0.1"))
    received = Received()
    async with running(kube(api, received), received) as got:
        await got.wait_for(lambda: got.addresses() == ["10.0.0.1:8080"])
        await got.wait_for(lambda: api.watches)

        api.put("pods", pod("b", ip="10.0.0.2"))  # ADDED
        await got.wait_for(lambda: got.addresses() == ["10.0.0.1:8080", "10.0.0.2:8080"])

        api.put("pods", pod("a", ip="10.0.0.1", labels={"v": "2"}, phase="Failed"))  # MODIFIED
        await got.wait_for(lambda: got.targets()[0].get(META + "pod_label_v") == "2")
        assert got.targets()[0][META + "pod_phase"] == "Failed"
        assert [g.source for g in got.sends[-1]] == ["job/kubernetes/0/pod/default/a"]

        api.delete("pods", "default", "b")  # DELETED
        await got.wait_for(lambda: got.addresses() == ["10.0.0.1:8080"])
        assert got.sends[-1][0].source == "job/kubernetes/0/pod/default/b"
        assert not got.sends[-1][0].targets

        api.put("pods", pod("a", ip=""))  # lost its IP: no targets
        await got.wait_for(lambda: got.addresses() == [])
        assert api.lists("pods") == 1
        assert got.refreshes[0] == ("kubernetes", False)


async def test_a_watch_the_server_ends_resumes_from_the_last_version(api: FakeKubernetes) -> None:
    api.put("pods", pod("a", ip="10.0.0.1"))
    received = Received()
    async with running(kube(api, received), received) as got:
        await got.wait_for(lambda: got.groups and api.watches)
        api.put("pods", pod("b", ip="10.0.0.2"))
        await got.wait_for(lambda: len(got.groups) == 2)
        seen = api.version

        api.end_watches()
        await got.wait_for(lambda: len(api.watch_requests("pods")) == 2 and api.watches)
        assert api.watch_requests("pods")[1]["resourceVersion"] == str(seen)
        assert api.lists("pods") == 1  # no re-list for a watch that simply ended

        api.put("pods", pod("c", ip="10.0.0.3"))
        await got.wait_for(lambda: len(got.groups) == 3)


async def test_410_gone_forces_a_relist_that_catches_up(api: FakeKubernetes) -> None:
    for name, ip in (("a", "10.0.0.1"), ("b", "10.0.0.2")):
        api.put("pods", pod(name, ip=ip))
    received = Received()
    async with running(kube(api, received), received) as got:
        await got.wait_for(lambda: len(got.groups) == 2 and api.watches)
        lists = api.lists("pods")

        # While the watch is down, b goes and c comes, and the history is compacted away.
        watches = list(api.watches)
        api.watches.clear()
        api.delete("pods", "default", "b")
        api.put("pods", pod("c", ip="10.0.0.3"))
        api.compact()
        for watch in watches:
            watch.queue.put_nowait(None)
        api.watches.extend(watches)

        await got.wait_for(lambda: got.addresses() == ["10.0.0.1:8080", "10.0.0.3:8080"])
        assert api.lists("pods") == lists + 1
        assert got.refreshes.count(("kubernetes", True)) == 0  # 410 is not a failure

        # The same through an ERROR event inside the watch stream.
        await got.wait_for(lambda: api.watches)
        api.compact()
        api.expire_watches()
        await got.wait_for(lambda: api.lists("pods") == lists + 2)
        api.put("pods", pod("d", ip="10.0.0.4"))
        await got.wait_for(lambda: "10.0.0.4:8080" in got.addresses())
        assert got.refreshes.count(("kubernetes", True)) == 0


async def test_a_server_that_always_answers_410_is_not_hammered(api: FakeKubernetes) -> None:
    api.put("pods", pod("a", ip="10.0.0.1"))
    api.compacted = 10**9  # every watch is "too old"
    received = Received()
    async with running(kube(api, received), received) as got:
        await got.wait_for(lambda: got.refreshes.count(("kubernetes", True)) >= 2)
        # Each failed round is one list and one watch, with a back-off in between.
        assert api.lists("pods") <= got.refreshes.count(("kubernetes", True)) + 1
        assert got.addresses() == ["10.0.0.1:8080"]


async def test_namespaces_and_selectors(api: FakeKubernetes) -> None:
    api.put("pods", pod("a", namespace="one", ip="10.0.0.1", labels={"scrape": "yes"}))
    api.put("pods", pod("b", namespace="two", ip="10.0.0.2", labels={"scrape": "yes"}))
    api.put("pods", pod("c", namespace="one", ip="10.0.0.3", labels={"scrape": "no"}))
    api.put("pods", pod("d", namespace="three", ip="10.0.0.4", labels={"scrape": "yes"}))
    received = Received()
    discoverer = kube(
        api,
        received,
        namespaces={"names": ["one", "two"]},
        selectors=[{"role": "pod", "label": "scrape=yes", "field": "status.phase=Running"}],
    )
    async with running(discoverer, received) as got:
        await got.wait_for(lambda: got.sends)
        assert got.addresses() == ["10.0.0.1:8080", "10.0.0.2:8080"]
        paths = {path for path, _, _ in api.requests}
        assert paths == {"/api/v1/namespaces/one/pods", "/api/v1/namespaces/two/pods"}
        assert all(
            q["labelSelector"] == "scrape=yes" and q["fieldSelector"] == "status.phase=Running"
            for _, q, _ in api.requests
        )


async def test_api_errors_are_retried_logged_once_and_counted(
    api: FakeKubernetes, caplog: pytest.LogCaptureFixture
) -> None:
    api.put("pods", pod("a", ip="10.0.0.1"))
    api.fail_lists = 3
    received = Received()
    with caplog.at_level(logging.WARNING, "metricgate.discovery"):
        async with running(kube(api, received), received) as got:
            await got.wait_for(lambda: got.addresses() == ["10.0.0.1:8080"])
    assert got.refreshes[:4] == [("kubernetes", True)] * 3 + [("kubernetes", False)]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert "HTTP 500" in warnings[0] and "etcdserver: request timed out" in warnings[0]
    assert "/api/v1/pods" in warnings[0]


async def test_unreachable_api_server_sends_nothing_and_keeps_trying() -> None:
    config = KubernetesSDConfig.model_validate({"api_server": "http://127.0.0.1:9", "role": "pod"})
    received = Received()
    discoverer = KubernetesDiscoverer(config, "k", received.refreshed, retry=0.01)
    async with running(discoverer, received) as got:
        await got.wait_for(lambda: len(got.refreshes) >= 3)
    assert got.sends == [] and set(got.refreshes) == {("kubernetes", True)}


async def test_a_malformed_object_is_skipped_and_logged(
    api: FakeKubernetes, caplog: pytest.LogCaptureFixture
) -> None:
    api.put("pods", pod("good", ip="10.0.0.1"))
    api.put("pods", pod("bad", ip="10.0.0.2", containers=[{"name": "x", "ports": "8080"}]))
    received = Received()
    with caplog.at_level(logging.WARNING, "metricgate.discovery"):
        async with running(kube(api, received), received) as got:
            await got.wait_for(lambda: got.sends)
            assert got.addresses() == ["10.0.0.1:8080"]
            api.put("pods", pod("later", ip="10.0.0.3"))
            await got.wait_for(lambda: got.addresses() == ["10.0.0.1:8080", "10.0.0.3:8080"])
    assert "cannot read pod default/bad" in caplog.text
