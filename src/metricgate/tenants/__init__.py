"""Tenancy: who a request writes for, what that tenant may write, and its limits.

Pure logic over the `tenants:` config section (`metricgate.config.tenants`) and the principals
authenticators produce; listeners, processors and exporters call it. Sits above `extensions`
(it takes their `Principal`) and below the components.
"""

from metricgate.tenants.admission import OPEN, Admitted, ListenerGuard
from metricgate.tenants.limits import ConcurrencyLimiter
from metricgate.tenants.policy import TenantDirectory, TenantPolicy
from metricgate.tenants.rights import MetricRights, refusal_message
from metricgate.tenants.split import TENANT_ATTRIBUTE, TenantSplitter
from metricgate.tenants.stamp import TenantStamp

__all__ = [
    "OPEN",
    "TENANT_ATTRIBUTE",
    "Admitted",
    "ConcurrencyLimiter",
    "ListenerGuard",
    "MetricRights",
    "TenantDirectory",
    "TenantPolicy",
    "TenantSplitter",
    "TenantStamp",
    "refusal_message",
]
