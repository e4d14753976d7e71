"""Reading a live cluster for ``xpushare plan --kubeconfig``: one list per kind, through ``KubeApi``.

Lists come back as plain JSON (no client models: parsing thousands of slices into models would cost
seconds). Pods are read to count what each node already runs against its ``pods`` allocatable; pods
that have finished hold nothing and are left out by the server.
"""

from __future__ import annotations

from dra_driver.core.kube import DEVICE_CLASSES, NODES, RESOURCE_SLICES, KubeApi
from dra_driver.core.kubetypes import Obj
from dra_driver.planning.snapshot import ClusterSnapshot

__all__ = ["TemplateReader", "read_cluster"]

CLAIMS = "/apis/resource.k8s.io/v1/resourceclaims"
PODS = "/api/v1/pods"
RUNNING_PHASES = "status.phase!=Succeeded,status.phase!=Failed"


def read_cluster(api: KubeApi) -> ClusterSnapshot:
    """Slices, classes, claims (all namespaces), nodes and unfinished pods, as the API returns them."""
    return ClusterSnapshot(
        slices=tuple(api.list(RESOURCE_SLICES)),
        device_classes=tuple(api.list(DEVICE_CLASSES)),
        claims=tuple(api.list(CLAIMS)),
        nodes=tuple(api.list(NODES)),
        pods=tuple(api.list(PODS, fieldSelector=RUNNING_PHASES)),
    )

RESOURCE_API = "/apis/resource.k8s.io/v1"


class TemplateReader:
    """Finds the ResourceClaimTemplates a workload's pods name but its file does not hold."""

    def __init__(self, api: KubeApi) -> None:
        self._api = api

    def __call__(self, namespace: str, name: str) -> Obj | None:
        return self._api.find(f"{RESOURCE_API}/namespaces/{namespace}/resourceclaimtemplates/{name}")
