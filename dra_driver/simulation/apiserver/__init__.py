"""Local simulation of a Kubernetes cluster: an embedded API server speaking the Kubernetes REST protocol.

``ApiServer`` serves core/v1 Nodes, Pods, Events and Namespaces, resource.k8s.io/v1 (ResourceSlices,
ResourceClaims, ResourceClaimTemplates, DeviceClasses) and coordination.k8s.io/v1 Leases, so the driver,
its tests and the demo run against the official client without a cluster. See docs/simulation.md.
"""

from dra_driver.simulation.apiserver.server import ApiServer, ApiServerError

__all__ = ["ApiServer", "ApiServerError"]
