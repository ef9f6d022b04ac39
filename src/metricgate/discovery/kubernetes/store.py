"""What a Kubernetes role builds its groups from: the informers' objects, and the role contract.

A role (pod, endpoints, endpointslice) names the resources it needs, the first being its own
objects (one group per object), and turns changed keys of any of them into the groups to send
again: a changed Service rebuilds its Endpoints, a changed Pod the Endpoints that point at it.

Invariant: a role reads objects only through `Store`, so it always sees the informers' current copy.
"""

from __future__ import annotations

import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator

from metricgate.discovery.kubernetes.api import Informer, Object, Resource
from metricgate.discovery.targets import TargetGroup

log = logging.getLogger("metricgate.discovery")

META = "__meta_kubernetes_"

_INVALID = re.compile(r"[^a-zA-Z0-9_]")


def sanitize(name: str) -> str:
    """A Kubernetes label or annotation name as a Prometheus label name part."""
    return _INVALID.sub("_", name)


def put(labels: dict[str, str], name: str, value: object) -> None:
    """Set `name` unless the value is empty (an empty label is an absent one)."""
    if value is not None and value != "":
        labels[name] = str(value)


def metadata_labels(
    labels: dict[str, str], what: str, metadata: Object, annotations: bool = True
) -> None:
    """`<what>_label_<name>`, `<what>_labelpresent_<name>` (and the same for annotations)."""
    kinds = (
        (("label", "labels"), ("annotation", "annotations"))
        if annotations
        else (("label", "labels"),)
    )
    for singular, key in kinds:
        for name, value in (metadata.get(key) or {}).items():
            safe = sanitize(name)
            put(labels, f"{META}{what}_{singular}_{safe}", value)
            labels[f"{META}{what}_{singular}present_{safe}"] = "true"


class Store:
    """The objects of every informer, looked up by resource and `<namespace>/<name>`."""

    def __init__(self) -> None:
        self.informers: dict[Resource, list[Informer]] = {}

    def add(self, informer: Informer) -> None:
        self.informers.setdefault(informer.resource, []).append(informer)

    def get(self, resource: Resource, key: str) -> Object | None:
        for informer in self.informers.get(resource, ()):
            found = informer.objects.get(key)
            if found is not None:
                return found
        return None

    def items(self, resource: Resource) -> Iterator[tuple[str, Object]]:
        for informer in self.informers.get(resource, ()):
            yield from informer.objects.items()


class Role(ABC):
    """Builds the target groups of one Kubernetes SD role from a `Store`."""

    resources: tuple[Resource, ...]
    """What the role watches; the first is the objects that become groups."""

    def __init__(self, store: Store, name: str) -> None:
        self.store = store
        self.name = name
        """Prefix of every group source."""

    @abstractmethod
    def build(self, key: str) -> TargetGroup:
        """The group of the role's object `key` (an empty group when it is gone)."""

    def affected(self, resource: Resource, keys: list[str]) -> set[str]:
        """Keys of the role's objects whose groups depend on the changed `keys` of `resource`."""
        return set(keys) if resource == self.resources[0] else set()

    def changed(self, resource: Resource, keys: list[str]) -> list[TargetGroup]:
        """The groups to send again after `keys` of `resource` changed."""
        return self._build_all(sorted(self.affected(resource, keys)))

    def everything(self) -> list[TargetGroup]:
        """Every group with targets (the first send)."""
        keys = [key for key, _ in self.store.items(self.resources[0])]
        return [group for group in self._build_all(keys) if group.targets]

    def _build_all(self, keys: Iterable[str]) -> list[TargetGroup]:
        groups = []
        for key in keys:
            try:
                groups.append(self.build(key))
            except (AttributeError, KeyError, TypeError, ValueError) as exc:
                # An object shaped unlike the API's schema: skip it, keep discovering the rest.
                log.warning(
                    "kubernetes discovery cannot read %s %s: %r",
                    self.resources[0].kind,
                    key,
                    exc,
                    extra={"mechanism": "kubernetes", "source": key},
                )
        return groups
