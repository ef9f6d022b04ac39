"""The security layer wired into a running gateway: who may use each listener, and as whom.

`gateway` holds `GatewayAccess` (the enabled authenticator extensions, the tenant directory, one
stamp per tenant, audit and telemetry reporting); `web` the admission of HTTP pages that are not
receivers (a scrape page, the telemetry server's admin pages). Receivers apply it per request in
`metricgate.receiving.access`.

Sits above `extensions`, `tenants`, `listeners` and `telemetry`, below the pipeline: the
pipeline's service builds one `GatewayAccess` and hands it to components through the `Host`, and
nothing here imports the pipeline or a component.
"""

from metricgate.access.gateway import AuditSink, GatewayAccess, build_extensions
from metricgate.access.web import AdminGate, PageGate, refusal

__all__ = ["AdminGate", "AuditSink", "GatewayAccess", "PageGate", "build_extensions", "refusal"]
