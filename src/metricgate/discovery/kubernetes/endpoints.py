"""`role: endpoints` and `role: endpointslice`: a target per address and port of a Service's
endpoints, with the Service's labels, and the pod's labels when the address is a pod.

For an address backed by a pod, the target also gets the pod role's labels (and the container
labels of the container port it matches), and every container port of that pod not covered by an
endpoint port becomes a target of its own, as in Prometheus. Endpoints targets carry
`endpoints_name`, `endpoints_label_*`, `endpoint_ready`, `endpoint_port_name`,
`endpoint_port_protocol`, `endpoint_hostname`, `endpoint_node_name`,
`endpoint_address_target_kind`/`_name`; EndpointSlice targets the `endpointslice_*` labels. The
Service's `service_name`, `service_label_*`, `service_annotation_*` (and `..present_*`) are group
labels when the Service exists.

Invariant: a group is rebuilt whenever its own object, its Service or one of its pods changes, so
labels never lag the objects they come from.
"""

from __future__ import annotations

from metricgate.discovery.kubernetes.api import (
    ENDPOINTS,
    ENDPOINTSLICES,
    PODS,
    SERVICES,
    Object,
    Resource,
)
from metricgate.discovery.kubernetes.pod import container_port_labels, pod_labels
from metricgate.discovery.kubernetes.store import (
    META,
    Role,
    Store,
    metadata_labels,
    put,
    sanitize,
)
from metricgate.discovery.targets import Labels, TargetGroup, join_host_port

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
"""The label an EndpointSlice names its Service with."""


def service_labels(service: Object) -> dict[str, str]:
    """`service_name`, `namespace` and the Service's labels and annotations."""
    metadata = service.get("metadata") or {}
    labels: dict[str, str] = {}
    put(labels, META + "service_name", metadata.get("name"))
    put(labels, META + "namespace", metadata.get("namespace"))
    metadata_labels(labels, "service", metadata)
    return labels


class _Targets:
    """One group's targets, with the pods they point at and the ports already targeted."""

    def __init__(self, store: Store, namespace: str, slice_protocol: bool) -> None:
        self.store = store
        self.namespace = namespace
        self.slice_protocol = slice_protocol
        """EndpointSlice targets take a matched container port's protocol from the container,
        Endpoints targets from the endpoint port (Prometheus' two code paths differ so)."""
        self.targets: list[Labels] = []
        self.pods: dict[str, tuple[Object, set[object]]] = {}
        self.referenced: set[str] = set()

    def add(self, target: dict[str, str], ref: Object | None, port: Object) -> None:
        pod, key = None, ""
        if ref is not None and ref.get("kind") == "Pod":
            key = f"{ref.get('namespace') or self.namespace}/{ref.get('name', '')}"
            self.referenced.add(key)
            pod = self.store.get(PODS, key)
        if pod is None:
            self.targets.append(target)
            return
        target.update(pod_labels(pod))
        number = port.get("port")
        for container in (pod.get("spec") or {}).get("containers") or ():
            for cport in container.get("ports") or ():
                if number is not None and cport.get("containerPort") == number:
                    protocol = (
                        cport.get("protocol") if self.slice_protocol else port.get("protocol")
                    )
                    target.update(container_port_labels(container, cport, protocol))
                    break
        self.pods.setdefault(key, (pod, set()))[1].add(number)
        self.targets.append(target)

    def finish(self) -> tuple[Labels, ...]:
        """The targets, plus one per container port of a seen pod that no endpoint covered."""
        for pod, seen in self.pods.values():
            ip = (pod.get("status") or {}).get("podIP") or ""
            for container in (pod.get("spec") or {}).get("containers") or ():
                for cport in container.get("ports") or ():
                    number = cport.get("containerPort")
                    if number in seen:
                        continue
                    target = {"__address__": join_host_port(str(ip), str(number))}
                    target.update(container_port_labels(container, cport, cport.get("protocol")))
                    target.update(pod_labels(pod))
                    self.targets.append(target)
        return tuple(self.targets)


class _PodBackedRole(Role):
    """What the two roles share: the pod back-references and the group's common labels."""

    def __init__(self, store: Store, name: str) -> None:
        super().__init__(store, name)
        self.pod_refs: dict[str, set[str]] = {}
        """pod key -> keys of the role's objects pointing at it (bounded by the objects)."""
        self.refs_of: dict[str, set[str]] = {}

    def _index(self, key: str, pods: set[str]) -> None:
        for pod in self.refs_of.pop(key, set()) - pods:
            owners = self.pod_refs.get(pod)
            if owners is not None:
                owners.discard(key)
                if not owners:
                    del self.pod_refs[pod]
        if pods:
            self.refs_of[key] = pods
            for pod in pods:
                self.pod_refs.setdefault(pod, set()).add(key)

    def affected(self, resource: Resource, keys: list[str]) -> set[str]:
        if resource == PODS:
            return {owner for key in keys for owner in self.pod_refs.get(key, ())}
        if resource == SERVICES:
            return self._for_services(keys)
        return super().affected(resource, keys)

    def _for_services(self, keys: list[str]) -> set[str]:
        raise NotImplementedError

    def _service(self, namespace: str, name: str) -> dict[str, str]:
        service = self.store.get(SERVICES, f"{namespace}/{name}") if name else None
        return service_labels(service) if service is not None else {}


class EndpointsRole(_PodBackedRole):
    """Endpoints objects as target groups, sourced `endpoints/<namespace>/<name>`."""

    resources = (ENDPOINTS, SERVICES, PODS)

    def _for_services(self, keys: list[str]) -> set[str]:
        return {key for key in keys if self.store.get(ENDPOINTS, key) is not None}

    def build(self, key: str) -> TargetGroup:
        source = f"{self.name}/endpoints/{key}"
        endpoints = self.store.get(ENDPOINTS, key)
        if endpoints is None:
            self._index(key, set())
            return TargetGroup(source)
        metadata = endpoints.get("metadata") or {}
        namespace = str(metadata.get("namespace", ""))
        labels: dict[str, str] = {}
        put(labels, META + "namespace", namespace)
        put(labels, META + "endpoints_name", metadata.get("name"))
        labels.update(self._service(namespace, str(metadata.get("name", ""))))
        metadata_labels(labels, "endpoints", metadata, annotations=False)
        targets = _Targets(self.store, namespace, slice_protocol=False)
        for subset in endpoints.get("subsets") or ():
            for port in subset.get("ports") or ():
                for addresses, ready in (("addresses", "true"), ("notReadyAddresses", "false")):
                    for address in subset.get(addresses) or ():
                        targets.add(
                            self._target(address, port, ready), address.get("targetRef"), port
                        )
        found = targets.finish()
        self._index(key, targets.referenced)
        return TargetGroup(source, found, labels)

    @staticmethod
    def _target(address: Object, port: Object, ready: str) -> dict[str, str]:
        target = {"__address__": join_host_port(str(address.get("ip", "")), str(port.get("port")))}
        put(target, META + "endpoint_port_name", port.get("name"))
        put(target, META + "endpoint_port_protocol", port.get("protocol"))
        target[META + "endpoint_ready"] = ready
        ref = address.get("targetRef")
        if ref is not None:
            put(target, META + "endpoint_address_target_kind", ref.get("kind"))
            put(target, META + "endpoint_address_target_name", ref.get("name"))
        put(target, META + "endpoint_node_name", address.get("nodeName"))
        put(target, META + "endpoint_hostname", address.get("hostname"))
        return target


def _bool(value: object) -> str | None:
    return None if value is None else ("true" if value else "false")


class EndpointSliceRole(_PodBackedRole):
    """EndpointSlice objects (discovery.k8s.io/v1) as groups, `endpointslice/<namespace>/<name>`."""

    resources = (ENDPOINTSLICES, SERVICES, PODS)

    def _for_services(self, keys: list[str]) -> set[str]:
        wanted = set(keys)
        return {
            key
            for key, item in self.store.items(ENDPOINTSLICES)
            if f"{key.split('/', 1)[0]}/{_service_name(item)}" in wanted
        }

    def build(self, key: str) -> TargetGroup:
        source = f"{self.name}/endpointslice/{key}"
        item = self.store.get(ENDPOINTSLICES, key)
        if item is None:
            self._index(key, set())
            return TargetGroup(source)
        metadata = item.get("metadata") or {}
        namespace = str(metadata.get("namespace", ""))
        labels: dict[str, str] = {}
        put(labels, META + "namespace", namespace)
        put(labels, META + "endpointslice_name", metadata.get("name"))
        put(labels, META + "endpointslice_address_type", item.get("addressType"))
        labels.update(self._service(namespace, _service_name(item)))
        targets = _Targets(self.store, namespace, slice_protocol=True)
        for endpoint in item.get("endpoints") or ():
            for port in item.get("ports") or ():
                for address in endpoint.get("addresses") or ():
                    targets.add(
                        self._target(str(address), endpoint, port), endpoint.get("targetRef"), port
                    )
        found = targets.finish()
        self._index(key, targets.referenced)
        return TargetGroup(source, found, labels)

    @staticmethod
    def _target(address: str, endpoint: Object, port: Object) -> dict[str, str]:
        number = port.get("port")
        target = {
            "__address__": address if number is None else join_host_port(address, str(number))
        }
        prefix = META + "endpointslice_"
        put(target, prefix + "port_name", port.get("name"))
        put(target, prefix + "port_protocol", port.get("protocol"))
        put(target, prefix + "port", number)
        put(target, prefix + "port_app_protocol", port.get("appProtocol"))
        conditions = endpoint.get("conditions") or {}
        for condition in ("ready", "serving", "terminating"):
            put(
                target, f"{prefix}endpoint_conditions_{condition}", _bool(conditions.get(condition))
            )
        put(target, prefix + "endpoint_hostname", endpoint.get("hostname"))
        ref = endpoint.get("targetRef")
        if ref is not None:
            put(target, prefix + "address_target_kind", ref.get("kind"))
            put(target, prefix + "address_target_name", ref.get("name"))
        for name, value in (endpoint.get("deprecatedTopology") or {}).items():
            put(target, f"{prefix}endpoint_topology_{sanitize(name)}", value)
            target[f"{prefix}endpoint_topology_present_{sanitize(name)}"] = "true"
        return target


def _service_name(item: Object) -> str:
    return str(((item.get("metadata") or {}).get("labels") or {}).get(SERVICE_NAME_LABEL, ""))
