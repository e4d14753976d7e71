"""Kubernetes Events about a Node, so operators see slice problems in ``kubectl describe node``.

Events are best effort: failing to record one is logged and never fails the work it describes.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from dra_driver.core.kube import ApiError, KubeApi

log = logging.getLogger(__name__)

COMPONENT = "xpushare-slice-publisher"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class NodeEvents:
    """Records core/v1 Events whose involved object is a Node (they live in ``default``, as kubelet's do)."""

    def __init__(self, api: KubeApi, namespace: str = "default", component: str = COMPONENT) -> None:
        self.api = api
        self.namespace = namespace
        self.component = component

    def warning(self, node_name: str, node_uid: str | None, reason: str, message: str) -> None:
        stamp = _now()
        involved = {"apiVersion": "v1", "kind": "Node", "name": node_name}
        if node_uid:
            involved["uid"] = node_uid
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{node_name}.{time.time_ns():x}", "namespace": self.namespace},
            "involvedObject": involved,
            "reason": reason,
            "message": message[:1024],
            "type": "Warning",
            "source": {"component": self.component, "host": node_name},
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        try:
            self.api.create(f"/api/v1/namespaces/{self.namespace}/events", body)
        except ApiError as err:
            log.warning(
                "could not record event", extra={"node": node_name, "reason": reason, "error": str(err)}
            )
