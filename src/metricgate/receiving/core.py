"""The receiver skeleton (the Collector's receiverhelper): admit, consume, count, log.

Every receiver, over HTTP or gRPC, runs a request through one `ReceiverCore`:

1. `admit(info, access)`: the admission checks, before a byte of the body is read. `info` carries
   the transport, the peer address, the request headers (gRPC: metadata) and the TLS peer
   certificate. The core's `checks` (the memory limiter) run for every listener; then, on a
   listener with `auth`, its `ReceiverAccess` (`receiving/access.py`: authentication, the
   tenant's rights, rate and concurrency limits), which sets `info.tenant`. The access is per
   listener, not in `checks`, because one receiver (otlp) serves listeners with different `auth`.
2. The receiver reads, decompresses and decodes the body itself (the protocol part), within
   `info.body_limit` (the listener's limit, or the tenant's `max_request_size` when smaller).
3. `allowed(batch, info)`: the part of the batch the tenant may write (`allow_metrics` /
   `deny_metrics`), the refused points counted and named for the partial-success answer.
4. `consume(batch, transport, info)`: for a tenant, charges its rate limit, stamps the tenant on
   the data (`TenantStamp`) and keeps it out of pipelines it may not enter; then hands the batch
   to the pipelines and counts its points as accepted, or as refused under the error's `reason`;
   an unexpected exception becomes a `ConsumeError` (a bug: 500 / INTERNAL) after being logged
   with its traceback.
5. The transport answers a refusal (`ConsumeError` or, from admission, `AccessError`) from its
   class alone (`errors.py`: `http_status`, `grpc_code`, `retry_after`, an `Unauthenticated`'s
   `challenge`), calls `refused()` (one rate-limited log line per reason) and `count_request()`.

Invariant: a point is counted once, as accepted or as refused with a reason (for a tenant, in
the tenant's counters too); the points of a request whose body never decoded are unknown and not
counted (the request is, by status code, in `metricgate_receiver_requests_total`). A request
with a tenant reaches the pipelines only stamped with it; on a gateway where some receiver
authenticates, a request without a tenant reaches them without a `tenant.id` (the anonymous stamp
takes a client-sent one off), so unauthenticated data never passes for a tenant's.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Hashable, Mapping
from typing import Final, Protocol

from metricgate.errors import (
    AccessError,
    ConcurrencyLimitError,
    ConsumeError,
    PermissionDenied,
    TooLargeError,
)
from metricgate.extensions import Principal
from metricgate.model import Batch
from metricgate.pipeline.component import Consumer
from metricgate.pipeline.fanout import PipelineFanOut
from metricgate.pipeline.host import Host
from metricgate.pipeline.memory import MemoryGuard
from metricgate.tenants import TenantPolicy, TenantStamp, refusal_message

Refusal = ConsumeError | AccessError
"""What a request is refused with: an error class of `errors.py` that knows its answer."""
REFUSALS: Final = (ConsumeError, AccessError)

WARN_EVERY_S: Final = 10.0
"""At most one warning per refusal reason per receiver this often; the rest go to debug."""
NOT_ALLOWED: Final = "metric_not_allowed"
"""The refusal reason of points whose metric name the tenant may not write."""
MAX_TENANT_ROUTES: Final = 10_000


class RequestInfo:
    """What admission checks see of a request before its body is read.

    Each transport subclasses it (`receivers.http.HttpRequest`, the otlp receiver's gRPC call);
    headers and the peer certificate are read only when a check asks for them. Admission on a
    listener with `auth` fills in `principal` and `tenant`, and may lower `body_limit`.
    """

    __slots__ = ("body_limit", "holding", "peer", "principal", "tenant", "transport")

    def __init__(self, transport: str, peer: str, body_limit: int) -> None:
        self.transport = transport
        """`http` or `grpc`, as in the telemetry's `transport` label."""
        self.peer = peer
        """The client's address (`host:port`, or gRPC's `ipv4:host:port`)."""
        self.body_limit = body_limit
        """The largest body this request may have (bytes on the wire; gRPC: the message)."""
        self.principal: Principal | None = None
        """Who sent it, on a listener with `auth` (once admitted)."""
        self.tenant: TenantPolicy | None = None
        """Whose data it is, on a listener with `auth` (once admitted)."""
        self.holding = False
        """True while the request holds one of its tenant's gRPC streams or connections."""

    @property
    def headers(self) -> Mapping[str, str]:
        """Request headers (gRPC: invocation metadata); look names up in lower case."""
        raise NotImplementedError

    @property
    def peer_certificate(self) -> bytes | None:
        """The client's TLS certificate (DER), or None without TLS or a client certificate."""
        raise NotImplementedError

    @property
    def connection(self) -> Hashable:
        """What identifies the request's connection (per-tenant connection limits)."""
        raise NotImplementedError

    def on_close(self, callback: Callable[[], None]) -> bool:
        """Call `callback` when the request's connection closes; False when the transport
        cannot tell (then the caller must not count the connection)."""
        return False


AdmissionCheck = Callable[[RequestInfo], Awaitable[None] | None]
"""Raises a `Refusal` to refuse the request (`Unauthenticated` 401, `PermissionDenied` 403,
`RateLimitError` 429...); returns None, or an awaitable for a check that has to wait (a token
verified off the event loop), to admit it."""


def memory_check(memory: MemoryGuard) -> AdmissionCheck:
    """Refuse while the process is over its memory limit (`MemoryLimitError`: 429)."""

    def check(info: RequestInfo) -> None:
        memory.check()

    return check


class ListenerAdmission(Protocol):
    """A listener's own admission step, run after the core's checks (`receiving.access`'s
    `ReceiverAccess` on a listener with `auth`); declared here so the core needs nothing of it."""

    async def admit(self, info: RequestInfo) -> None: ...


class RefusalLog:
    """One warning per reason every `WARN_EVERY_S`, with the count suppressed since; the rest
    at debug level. A misbehaving sender retries every few milliseconds; the counters have
    every refusal, the log keeps readable."""

    def __init__(self, logger: logging.Logger) -> None:
        self._log = logger
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def log(self, reason: str, message: str, extra: dict[str, object]) -> None:
        now = time.monotonic()
        if now - self._last.get(reason, -WARN_EVERY_S) >= WARN_EVERY_S:
            self._last[reason] = now
            suppressed = self._suppressed.pop(reason, 0)
            self._log.warning(message, extra={**extra, "suppressed_since_last": suppressed})
        else:
            self._suppressed[reason] = self._suppressed.get(reason, 0) + 1
            self._log.debug(message, extra=extra)


class ReceiverCore:
    """Admission, consumption, counting and refusal logging for one receiver (any transport)."""

    def __init__(
        self,
        receiver_id: str,
        consumer: Consumer,
        host: Host,
        logger: logging.Logger,
        checks: tuple[AdmissionCheck, ...] | None = None,
    ) -> None:
        self.receiver_id = receiver_id
        self.consumer = consumer
        self.host = host
        self.checks = (memory_check(host.memory),) if checks is None else checks
        """Run in order by `admit`, for every listener; the first to raise refuses the request."""
        self._log = logger
        self._refusals = RefusalLog(logger)
        telemetry = host.telemetry
        self._accepted = telemetry.receiver_accepted
        self._refused = telemetry.receiver_refused
        self._requests = telemetry.receiver_requests
        self._tenant_accepted = telemetry.tenant_accepted_points
        self._tenant_refused = telemetry.tenant_refused_points
        self._tenant_requests = telemetry.tenant_refused_requests
        self._forged = telemetry.tenant_forged_series
        self._pipelines = host.pipelines.get(receiver_id, {})
        self._routes: dict[str, Consumer | None] = {}

    async def admit(self, info: RequestInfo, access: ListenerAdmission | None = None) -> None:
        """Run the admission checks, then the listener's `access`; raise the first `Refusal`."""
        for check in self.checks:
            pending = check(info)
            if pending is not None:
                await pending
        if access is not None:
            await access.admit(info)

    def consumer_for(self, tenant: TenantPolicy) -> Consumer | None:
        """The pipelines `tenant` may enter of those this receiver feeds (None: none of them)."""
        if tenant.config.pipelines is None or not self._pipelines:
            return self.consumer
        if tenant.id in self._routes:
            return self._routes[tenant.id]
        allowed = [c for pid, c in self._pipelines.items() if tenant.may_enter(pid)]
        route: Consumer | None
        if len(allowed) == len(self._pipelines):
            route = self.consumer
        elif len(allowed) > 1:
            route = PipelineFanOut(allowed)
        else:
            route = allowed[0] if allowed else None
        if len(self._routes) >= MAX_TENANT_ROUTES:
            self._routes.clear()
        self._routes[tenant.id] = route
        return route

    def require_pipelines(self, tenant: TenantPolicy) -> None:
        """PermissionDenied when `tenant` may enter none of the pipelines this receiver feeds."""
        if self.consumer_for(tenant) is None:
            raise PermissionDenied(
                f"tenant {tenant.id!r} may enter none of the pipelines receiver "
                f"{self.receiver_id!r} feeds ({', '.join(self._pipelines)}); see "
                f"tenants.{tenant.id}.pipelines"
            )

    def allowed(self, batch: Batch, info: RequestInfo) -> tuple[Batch, int, str]:
        """The part of `batch` the request's tenant may write, the points refused and a message
        naming their metrics ("" when nothing was refused); refused points are counted."""
        tenant = info.tenant
        if tenant is None or tenant.rights.unrestricted:
            return batch, 0, ""
        kept, refused = tenant.rights.filter(batch)
        if not refused:
            return batch, 0, ""
        points, message = self.not_allowed(info, tenant, refused)
        return kept, points, message

    def not_allowed(
        self, info: RequestInfo, tenant: TenantPolicy, refused: Counter[str]
    ) -> tuple[int, str]:
        """Count and log points refused per metric name; the points and the client's message."""
        points = sum(refused.values())
        message = refusal_message(tenant.id, refused)
        self._tenant_refused.labels(self.receiver_id, tenant.id, NOT_ALLOWED).inc(points)
        self.rejected(info.transport, NOT_ALLOWED, points, info.peer, message)
        return points, message

    def stamp(self, info: RequestInfo | None) -> TenantStamp | None:
        """The stamp of the request's tenant (the anonymous stamp for a request without one on
        a gateway with tenants), for decoders that stamp while decoding."""
        access = self.host.access
        if access is None:
            return None
        tenant = info.tenant if info is not None else None
        return access.stamp(tenant.id) if tenant is not None else access.anonymous

    def forged(self, info: RequestInfo | None, series: int) -> None:
        """Count `series` that arrived with another tenant (the stamp replaced it)."""
        if series:
            tenant = info.tenant if info is not None else None
            self._forged.labels(self.receiver_id, tenant.id if tenant else "").inc(series)

    async def consume(
        self,
        batch: Batch,
        transport: str,
        info: RequestInfo | None = None,
        stamped: bool = False,
    ) -> int:
        """Hand `batch` to the pipelines; return its points, or raise the `ConsumeError` to
        answer with. Points are counted either way. For a request with a tenant, the tenant's
        rate is charged and the batch stamped with it first (unless the decoder did:
        `stamped`)."""
        points = batch.point_count()
        if not points:
            return 0
        tenant = info.tenant if info is not None else None
        consumer: Consumer | None = self.consumer
        if tenant is not None:
            consumer = self.consumer_for(tenant)
            try:
                if consumer is None:  # admission checked it; the route table may have changed
                    self.require_pipelines(tenant)
                tenant.charge(points)
            except (ConsumeError, AccessError) as exc:
                self._count_refused(transport, exc.reason, points, tenant)
                raise
        if not stamped:
            stamp = self.stamp(info)
            assert tenant is None or stamp is not None, "a tenant is admitted through access"
            if stamp is not None:
                batch, forged = stamp.apply(batch)
                self.forged(info, forged)
        assert consumer is not None
        try:
            await consumer.consume(batch)
        except ConsumeError as exc:
            self._count_refused(transport, exc.reason, points, tenant)
            raise
        except Exception as exc:
            self._log.exception(
                "consumer failed unexpectedly",
                extra={"receiver": self.receiver_id, "transport": transport},
            )
            self._count_refused(transport, ConsumeError.reason, points, tenant)
            raise ConsumeError("internal error while accepting the data") from exc
        self._accepted.labels(self.receiver_id, transport).inc(points)
        if tenant is not None:
            self._tenant_accepted.labels(self.receiver_id, tenant.id).inc(points)
        return points

    def _count_refused(
        self, transport: str, reason: str, points: int, tenant: TenantPolicy | None
    ) -> None:
        self._refused.labels(self.receiver_id, transport, reason).inc(points)
        if tenant is not None:
            self._tenant_refused.labels(self.receiver_id, tenant.id, reason).inc(points)

    def rejected(self, transport: str, reason: str, points: int, peer: str, message: str) -> None:
        """Count and log points dropped from a request that was otherwise taken."""
        if points:
            self._refused.labels(self.receiver_id, transport, reason).inc(points)
        self._refusals.log(
            reason,
            f"{self.receiver_id}: points rejected: {message}",
            {
                "receiver": self.receiver_id,
                "transport": transport,
                "peer": peer,
                "reason": reason,
                "points": points,
            },
        )

    def refused(self, error: Refusal, info: RequestInfo) -> None:
        """Log a refused request (its points, when known, were counted by `consume`); count it
        for its tenant when it was refused after admission, before its points were known."""
        tenant = info.tenant
        if tenant is not None and isinstance(
            error, AccessError | TooLargeError | ConcurrencyLimitError
        ):
            self._tenant_requests.labels(self.receiver_id, tenant.id, error.reason).inc()
        self._refusals.log(
            error.reason,
            f"{self.receiver_id}: request refused: {error}",
            {
                "receiver": self.receiver_id,
                "transport": info.transport,
                "peer": info.peer,
                "reason": error.reason,
            },
        )

    def count_request(self, transport: str, code: str) -> None:
        self._requests.labels(self.receiver_id, transport, code).inc()
