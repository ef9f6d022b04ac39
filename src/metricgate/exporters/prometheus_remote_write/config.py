"""`exporters.prometheus_remote_write`: the remote-write sender's configuration model.

Every key is documented once here and in docs/components/exporters/prometheus_remote_write.md.
Invariant: a config that validates can be sent with: URLs, label names, header clashes,
credentials and shard bounds are all checked here, never at start.
"""

from __future__ import annotations

from typing import Any, Final, Literal, Self
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from metricgate.config.tenant_header import TenantHeader, check_header_clash
from metricgate.config.tls import ClientTls
from metricgate.config.types import ByteSize, Duration
from metricgate.pipeline.queue import ExporterConfig, QueueSettings, RetrySettings
from metricgate.translate.names import LABEL_NAME_RE
from metricgate.translate.options import TranslationOptions

PROTOCOL_HEADERS = frozenset(
    ("content-encoding", "content-type", "x-prometheus-remote-write-version", "user-agent")
)
"""Headers the protocol owns; `headers` may not set them."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BasicAuth(_Section):
    """`basic_auth`: HTTP basic auth; the password inline or read from a file at each send."""

    username: str
    password: str = ""
    password_file: str = ""

    @model_validator(mode="after")
    def _one_password(self) -> Self:
        if self.password and self.password_file:
            raise ValueError("set password or password_file, not both")
        return self


class ShardSettings(_Section):
    """`shards`: concurrent senders; each series always goes to the same one, keeping its order."""

    min: int = Field(default=1, ge=1)
    max: int = Field(default=10, ge=1)
    capacity: int = Field(default=10_000, ge=1)
    """Samples each shard may hold before `export` waits (back-pressure to the sending queue)."""

    @model_validator(mode="after")
    def _order(self) -> Self:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) must not exceed max ({self.max})")
        return self


class TargetInfo(_Section):
    """`target_info`: send one `target_info` series per resource with its other attributes."""

    enabled: bool = True


class PersistentQueue(_Section):
    """`queue`: deprecated alias of `sending_queue.storage` (the same keys); off unless
    `directory` is set, and then copied into `sending_queue.storage` when the config is read.

    With storage, every batch is written (per shard) to disk before the receiver answers its
    client, and only removed after the backend acknowledged it: restarts and crashes lose nothing
    that was accepted. The shard count is then fixed at `shards.max` (no resharding).
    """

    directory: str = ""
    """Where the queue lives (a subdirectory per exporter id is created); empty = in memory."""
    max_disk_bytes: ByteSize = Field(default=1 << 30, gt=0)
    """Unacknowledged bytes the queue may hold."""
    fsync: Literal["always", "batch", "never"] = "batch"
    """`always`: fsync before answering the client; `batch`: at most every 100 ms (a crash of the
    process loses nothing, a power loss up to 100 ms); `never`: leave it to the OS."""
    full_policy: Literal["refuse", "drop_oldest"] = "refuse"
    """When full: refuse new data with a retryable error (429), or drop the oldest segments."""
    segment_bytes: ByteSize = Field(default=16 << 20, ge=4096)
    """Size at which a segment file is closed and a new one begun."""


PROTOBUF_MESSAGE_V1: Final = "prometheus.WriteRequest"
PROTOBUF_MESSAGE_V2: Final = "io.prometheus.write.v2.Request"


class RemoteWriteExporterConfig(ExporterConfig, TranslationOptions):
    """`exporters.prometheus_remote_write`: push the pipeline's metrics with remote-write."""

    endpoint: str
    """The receiver's URL, e.g. `http://prometheus:9090/api/v1/write`."""
    protobuf_message: Literal["prometheus.WriteRequest", "io.prometheus.write.v2.Request"] = (
        PROTOBUF_MESSAGE_V1
    )
    """The protocol, named as Prometheus 3 does: 1.0 (`prometheus.WriteRequest`) or 2.0
    (`io.prometheus.write.v2.Request`); with 2.0, a 415 answer switches to 1.0 for good."""
    timeout: Duration = Field(default=30.0, gt=0)
    """Per request."""
    external_labels: dict[str, str] = {}
    """Added to every series that lacks a label of that name (series labels win)."""
    headers: dict[str, str] = {}
    """Extra request headers (`X-Scope-OrgID`, ...); the protocol's own may not be overridden."""
    tenant_header: TenantHeader | None = None
    """Send each tenant's series in requests of their own, with the tenant in this header."""
    basic_auth: BasicAuth | None = None
    bearer_token: str = ""
    bearer_token_file: str = ""
    """Read at each send, so a rotated token is picked up."""
    tls: ClientTls = ClientTls()
    max_samples_per_send: int = Field(default=2000, ge=1)
    max_batch_bytes: ByteSize = Field(default=0, ge=0)
    """Cut a request once its uncompressed body reaches this size; 0 = no limit."""
    flush_interval: Duration = Field(default=0.2, ge=0)
    """How long a shard waits for more samples before sending a partial request."""
    shards: ShardSettings = ShardSettings()
    target_info: TargetInfo = TargetInfo()
    send_staleness: bool = True
    """Send a StaleNaN when a series ends (no-recorded-value point, or expiry)."""
    metric_expiration: Duration = Field(default=300.0, gt=0)
    """A series not updated for this long is forgotten (and marked stale if `send_staleness`)."""
    queue: PersistentQueue = PersistentQueue()
    """Deprecated: use `sending_queue.storage` (see `_queue_alias`)."""
    sending_queue: QueueSettings = QueueSettings(num_consumers=1)
    """One consumer: parallelism comes from `shards`, which keep each series' order; `storage`
    puts each shard's queue on disk."""
    retry_on_failure: RetrySettings = RetrySettings(
        initial_interval=0.05, max_interval=30.0, max_elapsed_time=0.0, multiplier=2.0
    )
    """Prometheus-like: 50ms doubling to 30s, never give up (0) while the gateway runs."""

    @field_validator("endpoint")
    @classmethod
    def _check_endpoint(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"expected an http(s) URL, got {value!r}")
        return value

    @field_validator("external_labels")
    @classmethod
    def _check_labels(cls, value: dict[str, str]) -> dict[str, str]:
        for name, label_value in value.items():
            if not LABEL_NAME_RE.match(name) or name.startswith("__"):
                raise ValueError(f"expected label names like [a-zA-Z_][a-zA-Z0-9_]*, got {name!r}")
            if not label_value:
                raise ValueError(f"external label {name!r} has an empty value")
        return value

    @field_validator("headers")
    @classmethod
    def _check_headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if name.lower() in PROTOCOL_HEADERS:
                raise ValueError(f"header {name!r} is set by the protocol and cannot be overridden")
        return value

    @model_validator(mode="before")
    @classmethod
    def _sending_queue(cls, data: Any) -> Any:
        """`sending_queue` keys left out keep this exporter's defaults (one consumer), and
        `queue.directory` & co. (deprecated) become `sending_queue.storage`."""
        if not isinstance(data, dict):
            return data
        sending = data.get("sending_queue")
        if sending is not None and not isinstance(sending, dict):
            return data
        sending = {"num_consumers": 1, **(sending or {})}
        data = {**data, "sending_queue": sending}
        try:
            queue = PersistentQueue.model_validate(data.get("queue") or {})
        except ValidationError:
            return data  # reported under `queue.*`, where the user wrote it
        if not queue.directory:
            return data
        if sending.get("storage") is not None:
            raise ValueError(
                "set sending_queue.storage or the deprecated queue.directory, not both "
                "(queue.* is an alias of sending_queue.storage.*)"
            )
        return {**data, "sending_queue": {**sending, "storage": queue.model_dump()}}

    @field_validator("sending_queue")
    @classmethod
    def _one_consumer(cls, value: QueueSettings) -> QueueSettings:
        if value.num_consumers != 1:
            raise ValueError(
                "num_consumers must be 1: two consumers would reorder a series' samples; "
                "raise shards.max for parallel sending"
            )
        return value

    @model_validator(mode="after")
    def _tenant_header(self) -> Self:
        tenant_header = self.tenant_header
        if tenant_header is not None:
            name = tenant_header.name.lower()
            if name in PROTOCOL_HEADERS or name == "authorization":
                raise ValueError(
                    f"tenant_header: {tenant_header.name} is not a header a tenant can go in"
                )
            check_header_clash(tenant_header, self.headers)
        return self

    @model_validator(mode="after")
    def _one_credential(self) -> Self:
        given = [
            name
            for name, on in (
                ("basic_auth", self.basic_auth is not None),
                ("bearer_token", bool(self.bearer_token)),
                ("bearer_token_file", bool(self.bearer_token_file)),
                ("headers.Authorization", any(h.lower() == "authorization" for h in self.headers)),
            )
            if on
        ]
        if len(given) > 1:
            raise ValueError(f"set at most one of {', '.join(given)}")
        return self
