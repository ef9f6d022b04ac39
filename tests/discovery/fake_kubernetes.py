"""A small fake Kubernetes API server (aiohttp) that speaks the list/watch JSON protocol.

It serves pods, services, endpoints and endpointslices, cluster-wide and per namespace, with
paged lists (`continue`), equality label selectors, watches from a resourceVersion (history
replayed, then live events), `410 Gone` for versions older than the last compaction, ERROR events,
watches ended by the server, failures on demand and bearer-token checks.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

Object = dict[str, Any]

LIST_KINDS = {
    "pods": "PodList",
    "services": "ServiceList",
    "endpoints": "EndpointsList",
    "endpointslices": "EndpointSliceList",
}


@dataclass
class _Watch:
    plural: str
    namespace: str
    selector: dict[str, str]
    queue: asyncio.Queue[Object | None] = field(default_factory=asyncio.Queue)


def _selector(text: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in text.split(",") if part)


def _matches(obj: Object, namespace: str, selector: dict[str, str]) -> bool:
    metadata = obj["metadata"]
    labels = metadata.get("labels") or {}
    in_namespace = not namespace or metadata["namespace"] == namespace
    return in_namespace and all(labels.get(k) == v for k, v in selector.items())


class FakeKubernetes:
    """The cluster state, the requests seen, and knobs for the failure cases."""

    def __init__(self, token: str = "", page_size: int = 2) -> None:
        self.token = token
        self.page_size = page_size
        self.version = 1000
        self.objects: dict[str, dict[str, Object]] = {plural: {} for plural in LIST_KINDS}
        self.history: list[tuple[int, str, Object]] = []
        """(version, plural, event) for watches that start in the past."""
        self.compacted = 0
        """Watches from a version below this get 410 Gone."""
        self.fail_lists = 0
        """Answer this many list requests with HTTP 500."""
        self.watches: list[_Watch] = []
        self.requests: list[tuple[str, dict[str, str], str]] = []
        """(path, query, Authorization header) of every request."""
        self.url = ""
        self._runner: web.AppRunner | None = None

    # -- cluster changes ------------------------------------------------------------------------

    def put(self, plural: str, obj: Object) -> None:
        """Create or replace an object (ADDED or MODIFIED to watchers)."""
        self.version += 1
        obj = json.loads(json.dumps(obj))
        obj["metadata"]["resourceVersion"] = str(self.version)
        key = f"{obj['metadata']['namespace']}/{obj['metadata']['name']}"
        kind = "MODIFIED" if key in self.objects[plural] else "ADDED"
        self.objects[plural][key] = obj
        self._event(plural, {"type": kind, "object": obj})

    def delete(self, plural: str, namespace: str, name: str) -> None:
        self.version += 1
        obj = self.objects[plural].pop(f"{namespace}/{name}")
        obj["metadata"]["resourceVersion"] = str(self.version)
        self._event(plural, {"type": "DELETED", "object": obj})

    def _event(self, plural: str, event: Object) -> None:
        self.history.append((self.version, plural, event))
        for watch in self.watches:
            if watch.plural == plural and _matches(
                event["object"], watch.namespace, watch.selector
            ):
                watch.queue.put_nowait(event)

    def compact(self) -> None:
        """Forget the history: watches from any version seen so far get 410 Gone."""
        self.compacted = self.version
        self.history.clear()

    def end_watches(self) -> None:
        """The server ends every open watch (as it does at `timeoutSeconds`)."""
        for watch in self.watches:
            watch.queue.put_nowait(None)

    def expire_watches(self) -> None:
        """Send an ERROR event with a 410 Status on every open watch, then end it."""
        for watch in self.watches:
            status = {"kind": "Status", "status": "Failure", "code": 410, "reason": "Expired"}
            watch.queue.put_nowait({"type": "ERROR", "object": status})
            watch.queue.put_nowait(None)

    def lists(self, plural: str) -> int:
        return sum(
            1 for path, query, _ in self.requests if path.endswith(plural) and "watch" not in query
        )

    def watch_requests(self, plural: str) -> list[dict[str, str]]:
        return [
            query for path, query, _ in self.requests if path.endswith(plural) and "watch" in query
        ]

    # -- HTTP -----------------------------------------------------------------------------------

    async def start(self, context: ssl.SSLContext | None = None) -> str:
        app = web.Application()
        for prefix in ("/api/v1", "/apis/discovery.k8s.io/v1"):
            app.router.add_get(prefix + "/{plural}", self._handle)
            app.router.add_get(prefix + "/namespaces/{namespace}/{plural}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"{'https' if context else 'http'}://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        self.end_watches()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        query = dict(request.query)
        self.requests.append((request.path, query, request.headers.get("Authorization", "")))
        if self.token and request.headers.get("Authorization") != f"Bearer {self.token}":
            return _status(401, "Unauthorized")
        plural = request.match_info["plural"]
        if plural not in LIST_KINDS:
            return _status(404, f"the server could not find the requested resource ({plural})")
        namespace = request.match_info.get("namespace", "")
        selector = _selector(query.get("labelSelector", ""))
        if query.get("watch") in ("1", "true"):
            return await self._watch(request, plural, namespace, selector, query)
        if self.fail_lists:
            self.fail_lists -= 1
            return _status(500, "etcdserver: request timed out")
        items = [
            obj
            for _, obj in sorted(self.objects[plural].items())
            if _matches(obj, namespace, selector)
        ]
        start = int(query.get("continue", "0"))
        page = items[start : start + self.page_size]
        metadata: Object = {"resourceVersion": str(self.version)}
        if start + self.page_size < len(items):
            metadata["continue"] = str(start + self.page_size)
        body = {"kind": LIST_KINDS[plural], "apiVersion": "v1", "metadata": metadata, "items": page}
        return web.json_response(body)

    async def _watch(
        self,
        request: web.Request,
        plural: str,
        namespace: str,
        selector: dict[str, str],
        query: dict[str, str],
    ) -> web.StreamResponse:
        since = int(query.get("resourceVersion") or 0)
        if since < self.compacted:
            return _status(410, f"too old resource version: {since} ({self.compacted})")
        watch = _Watch(plural, namespace, selector)
        for version, kind, event in self.history:
            if (
                version > since
                and kind == plural
                and _matches(event["object"], namespace, selector)
            ):
                watch.queue.put_nowait(event)
        self.watches.append(watch)
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        try:
            while (event := await watch.queue.get()) is not None:
                await response.write(json.dumps(event).encode() + b"\n")
        finally:
            self.watches.remove(watch)
        await response.write_eof()
        return response


def _status(code: int, message: str) -> web.Response:
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": message,
        "code": code,
    }
    return web.json_response(body, status=code)


def pod(
    name: str,
    namespace: str = "default",
    ip: str = "10.1.0.1",
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    containers: list[Object] | None = None,
    **status: Any,
) -> Object:
    """A Running, Ready pod on node-1 with one container serving port 8080 unless told otherwise."""
    return {
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": f"uid-{name}",
            "labels": labels or {},
            "annotations": annotations or {},
            "managedFields": [{"manager": "kubectl", "operation": "Update"}],
        },
        "spec": {
            "nodeName": "node-1",
            "containers": containers
            if containers is not None
            else [
                {
                    "name": "app",
                    "image": "app:1",
                    "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                }
            ],
        },
        "status": {
            "phase": "Running",
            "podIP": ip,
            "hostIP": "192.168.0.10",
            "conditions": [{"type": "Ready", "status": "True"}],
            **status,
        },
    }
