"""`role: pod`: one target per declared container port, `__meta_kubernetes_pod_*` labels.

A container without ports gives one target at the bare pod IP (the scrape adds the port, or
relabeling does); init containers count too. A pod without an IP (starting, evicted) has no
targets. Group labels hold the pod's own labels (`namespace`, `pod_name`, `pod_ip`, `pod_label_*`,
`pod_labelpresent_*`, `pod_annotation_*`, `pod_annotationpresent_*`, `pod_ready`, `pod_phase`,
`pod_node_name`, `pod_host_ip`, `pod_uid`, `pod_controller_kind`/`_name`); each target holds its
container's (`pod_container_name`, `_id`, `_image`, `_init`, `_port_name`, `_port_number`,
`_port_protocol`). The endpoints roles reuse `pod_labels` for targets backed by a pod.

Invariant: label names and values are Prometheus 2.42's, so relabel rules written for it match.
"""

from __future__ import annotations

from metricgate.discovery.kubernetes.api import PODS, Object
from metricgate.discovery.kubernetes.store import META, Role, metadata_labels, put
from metricgate.discovery.targets import TargetGroup, join_host_port


def _ready(status: Object) -> str:
    for condition in status.get("conditions") or ():
        if condition.get("type") == "Ready":
            return str(condition.get("status", "Unknown")).lower()
    return "unknown"


def pod_labels(pod: Object) -> dict[str, str]:
    """The labels of a pod itself (not of one container); without the namespace."""
    metadata, spec, status = (pod.get(key) or {} for key in ("metadata", "spec", "status"))
    labels: dict[str, str] = {}
    put(labels, META + "pod_name", metadata.get("name"))
    put(labels, META + "pod_ip", status.get("podIP"))
    put(labels, META + "pod_ready", _ready(status))
    put(labels, META + "pod_phase", status.get("phase"))
    put(labels, META + "pod_node_name", spec.get("nodeName"))
    put(labels, META + "pod_host_ip", status.get("hostIP"))
    put(labels, META + "pod_uid", metadata.get("uid"))
    for owner in metadata.get("ownerReferences") or ():
        if owner.get("controller"):
            put(labels, META + "pod_controller_kind", owner.get("kind"))
            put(labels, META + "pod_controller_name", owner.get("name"))
            break
    metadata_labels(labels, "pod", metadata)
    return labels


def container_port_labels(container: Object, port: Object, protocol: object) -> dict[str, str]:
    """The labels of one container port (`protocol` as the caller's object states it)."""
    labels: dict[str, str] = {}
    put(labels, META + "pod_container_name", container.get("name"))
    put(labels, META + "pod_container_image", container.get("image"))
    put(labels, META + "pod_container_port_name", port.get("name"))
    put(labels, META + "pod_container_port_number", port.get("containerPort"))
    put(labels, META + "pod_container_port_protocol", protocol)
    return labels


class PodRole(Role):
    """Pods as target groups, sourced `pod/<namespace>/<name>`."""

    resources = (PODS,)

    def build(self, key: str) -> TargetGroup:
        source = f"{self.name}/pod/{key}"
        pod = self.store.get(PODS, key)
        ip = ((pod or {}).get("status") or {}).get("podIP")
        if pod is None or not ip:
            return TargetGroup(source)
        spec, status = pod.get("spec") or {}, pod.get("status") or {}
        labels = pod_labels(pod)
        put(labels, META + "namespace", (pod.get("metadata") or {}).get("namespace"))
        targets = []
        for init, containers, statuses in (
            (False, spec.get("containers"), status.get("containerStatuses")),
            (True, spec.get("initContainers"), status.get("initContainerStatuses")),
        ):
            ids = {s.get("name"): s.get("containerID") for s in statuses or ()}
            for container in containers or ():
                common: dict[str, str] = {}
                put(common, META + "pod_container_name", container.get("name"))
                put(common, META + "pod_container_id", ids.get(container.get("name")))
                put(common, META + "pod_container_image", container.get("image"))
                common[META + "pod_container_init"] = "true" if init else "false"
                ports = container.get("ports") or ()
                if not ports:
                    targets.append({"__address__": str(ip), **common})
                for port in ports:
                    number = port.get("containerPort")
                    target = {"__address__": join_host_port(str(ip), str(number)), **common}
                    target.update(container_port_labels(container, port, port.get("protocol")))
                    targets.append(target)
        return TargetGroup(source, tuple(targets), labels)
