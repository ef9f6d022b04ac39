"""The Kubernetes list/watch protocol: a local copy of one kind of object, kept current.

An `Informer` lists `GET <resource path>` (paged by `limit`/`continue`), then watches the same path
with `?watch=1&resourceVersion=<R>`: newline-separated `{"type": ADDED|MODIFIED|DELETED|BOOKMARK|
ERROR, "object": ...}` events. When a watch ends normally it watches again from the last
resourceVersion it saw; a 410 Gone (as the answer, or as an ERROR event) means that version is
too old, so it lists again; any other failure is logged (rate-limited) and the informer lists
again after a back-off (1 s doubling to 30 s). After each list it reports every object that
appeared, changed or disappeared, so nothing missed while disconnected is lost.

Invariant: `objects` only ever holds what the API server last said, keyed `<namespace>/<name>`; the
`on_change` callback sees every key whose object changed, after `objects` changed.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from metricgate.discovery.client import HttpClient
from metricgate.discovery.refresh import FailureLog
from metricgate.discovery.targets import OnRefresh
from metricgate.errors import describe

Object = dict[str, Any]
"""A Kubernetes object as the API's JSON gives it."""

MAX_EVENT_BYTES = 16 * 1024 * 1024
"""The largest watch event line read (Kubernetes objects are at most ~1.5 MiB in etcd)."""


@dataclass(frozen=True)
class Resource:
    """One kind of object and where the API serves it."""

    kind: str
    """The role name Prometheus gives it in `selectors` (`pod`, `service`, ...)."""
    plural: str
    prefix: str
    """`/api/v1` or `/apis/<group>/<version>`."""

    def path(self, namespace: str) -> str:
        if namespace:
            return f"{self.prefix}/namespaces/{namespace}/{self.plural}"
        return f"{self.prefix}/{self.plural}"


PODS = Resource("pod", "pods", "/api/v1")
SERVICES = Resource("service", "services", "/api/v1")
ENDPOINTS = Resource("endpoints", "endpoints", "/api/v1")
ENDPOINTSLICES = Resource("endpointslice", "endpointslices", "/apis/discovery.k8s.io/v1")


def object_key(obj: Object) -> str:
    """`<namespace>/<name>` of an object."""
    metadata = obj.get("metadata") or {}
    return f"{metadata.get('namespace', '')}/{metadata.get('name', '')}"


def _version(obj: Object) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion", ""))


def _slim(obj: Object) -> Object:
    # managedFields is most of an object's size and no label comes from it.
    metadata = obj.get("metadata")
    if isinstance(metadata, dict):
        metadata.pop("managedFields", None)
    return obj


class Gone(Exception):
    """The resourceVersion asked for is too old (HTTP 410): list again."""

    def __init__(self, answered: bool) -> None:
        super().__init__("HTTP 410 Gone")
        self.answered = answered
        """True for a 410 answer to the request, False for an ERROR event inside a watch."""


class ApiError(Exception):
    """The API server refused a request or sent something that is not its protocol."""


async def _error(response: aiohttp.ClientResponse) -> Exception:
    if response.status == 410:
        return Gone(answered=True)
    text = (await response.text())[:500]
    try:
        message = json.loads(text).get("message") or text
    except (ValueError, AttributeError):
        message = text
    return ApiError(f"HTTP {response.status} from {response.url.path}: {message}".strip())


async def _lines(stream: aiohttp.StreamReader) -> AsyncIterator[bytes]:
    """Non-empty lines of a response body, each at most `MAX_EVENT_BYTES` long."""
    buffer = bytearray()
    async for chunk in stream.iter_any():
        searched = len(buffer)
        buffer += chunk
        while (end := buffer.find(b"\n", searched)) >= 0:
            line = bytes(buffer[:end])
            del buffer[: end + 1]
            searched = 0
            if line.strip():
                yield line
        if len(buffer) > MAX_EVENT_BYTES:
            raise ApiError(f"a watch event is larger than {MAX_EVENT_BYTES} bytes")
    if buffer.strip():
        yield bytes(buffer)


Changed = Callable[["Informer", list[str]], None]


class Informer:
    """A local copy of one resource in one namespace (all when ""), kept by list and watch."""

    def __init__(
        self,
        client: HttpClient,
        base_url: str,
        resource: Resource,
        namespace: str,
        selector: tuple[str, str],
        on_change: Changed,
        failures: FailureLog,
        on_refresh: OnRefresh,
        retry: float = 1.0,
        watch_seconds: int = 300,
    ) -> None:
        self.client = client
        self.url = base_url + resource.path(namespace)
        self.resource = resource
        self.selector = selector
        self.on_change = on_change
        self.failures = failures
        self.on_refresh = on_refresh
        self.retry = retry
        self.watch_seconds = watch_seconds
        self.objects: dict[str, Object] = {}
        self.synced = asyncio.Event()
        """Set once the first list arrived."""

    def _params(self) -> dict[str, str]:
        label, field = self.selector
        params = {}
        if label:
            params["labelSelector"] = label
        if field:
            params["fieldSelector"] = field
        return params

    async def run(self) -> None:
        """List and watch until cancelled."""
        version = ""
        delay = self.retry
        while True:
            listed = not version
            listing = listed
            try:
                if listing:
                    version = await self._list()
                    self.on_refresh("kubernetes", False)
                    self.failures.succeeded(self.url)
                    listing = False
                version = await self._watch(version)
                delay = self.retry
                continue
            except Gone as gone:
                version = ""
                if not (listed and gone.answered):
                    continue  # the watch fell behind: list again at once
                # Gone for the version a list just gave: do not hammer the server.
                step = "listing" if listing else "watching from a fresh list"
                error: Exception = ApiError(f"HTTP 410 Gone while {step}")
            except (aiohttp.ClientError, TimeoutError, OSError, ValueError, ApiError) as exc:
                error = exc
            self.on_refresh("kubernetes", True)
            self.failures.failed(self.url, describe(error), "keeping the last targets, retrying")
            version = ""
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)

    async def _list(self) -> str:
        """List every object; report the differences to the last copy; return the version."""
        objects: dict[str, Object] = {}
        params = self._params() | {"limit": "500"}
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=60)
        while True:
            async with self.client.get(self.url, params=params, timeout=timeout) as response:
                if response.status != 200:
                    raise await _error(response)
                body = await response.json(content_type=None)
            if not isinstance(body, dict) or not isinstance(body.get("items"), list):
                raise ApiError(f"{self.url}: the answer is not a list of objects")
            for item in body["items"]:
                if isinstance(item, dict):
                    objects[object_key(item)] = _slim(item)
            metadata = body.get("metadata") or {}
            if not metadata.get("continue"):
                break
            params["continue"] = str(metadata["continue"])
        changed = [
            key
            for key, obj in objects.items()
            if key not in self.objects
            or _version(self.objects[key]) != _version(obj)
            or not _version(obj)
        ]
        changed += [key for key in self.objects if key not in objects]
        self.objects = objects
        self.synced.set()
        if changed:
            self.on_change(self, changed)
        return str(metadata.get("resourceVersion", ""))

    async def _watch(self, version: str) -> str:
        """Apply watch events from `version` on until the server ends the watch; the last version
        seen."""
        params = self._params() | {
            "watch": "1",
            "resourceVersion": version,
            "allowWatchBookmarks": "true",
            # Spread reconnections as client-go does, between one and two times the base.
            "timeoutSeconds": str(int(self.watch_seconds * (1 + random.random()))),
        }
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=10, sock_read=2 * self.watch_seconds + 30
        )
        async with self.client.get(self.url, params=params, timeout=timeout) as response:
            if response.status != 200:
                raise await _error(response)
            self.on_refresh("kubernetes", False)
            async for line in _lines(response.content):
                version = self._apply(json.loads(line)) or version
        return version

    def _apply(self, event: Any) -> str:
        """Apply one watch event; the resourceVersion it carries ("" when none)."""
        if not isinstance(event, dict) or not isinstance(event.get("object"), dict):
            raise ApiError(f"{self.url}: a watch event without an object")
        kind, obj = event.get("type"), event["object"]
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise Gone(answered=False)
            raise ApiError(f"{self.url}: watch error: {obj.get('message', obj)}")
        version = _version(obj)
        if kind in ("ADDED", "MODIFIED"):
            key = object_key(obj)
            self.objects[key] = _slim(obj)
        elif kind == "DELETED":
            key = object_key(obj)
            self.objects.pop(key, None)
        else:
            return version  # BOOKMARK: only the version moves
        self.on_change(self, [key])
        return version
