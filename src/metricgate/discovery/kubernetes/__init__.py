"""`kubernetes_sd_configs`: pods, Endpoints and EndpointSlices from the Kubernetes API.

`config.py` holds the keys and finds the API server, `api.py` the list/watch protocol (informers),
`store.py` the role contract, `pod.py` and `endpoints.py` the roles' `__meta_kubernetes_*` labels,
`discoverer.py` ties them together.

Invariant: this package speaks the API's JSON over HTTP itself; it needs no Kubernetes client
library.
"""

from metricgate.discovery.kubernetes.config import KubernetesSDConfig
from metricgate.discovery.kubernetes.discoverer import KubernetesDiscoverer

__all__ = ["KubernetesDiscoverer", "KubernetesSDConfig"]
