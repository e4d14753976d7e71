"""The node plugin's only door to the API server: read claims, list claims, post events.

Claims are read through the official client's typed API (``ResourceV1Api``) but decoded as plain JSON
(``_preload_content=False``): prepare only needs a few fields, and skipping the client's model
deserialization keeps a claim read well under a millisecond of CPU. Transient failures (server errors,
throttling, conflicts, an unreachable server) are retried with exponential backoff inside a deadline; a
404 is an answer, not an error (the claim is gone).
"""

from __future__ import annotations

import datetime
import json
import logging
from typing import Any, Protocol, cast

from kubernetes import client as k8s

from dra_driver.kube import ApiError, Backoff, typed_call, with_retries
from dra_driver.telemetry import tracer

log = logging.getLogger(__name__)
_tracer = tracer(__name__)


class ClaimReader(Protocol):
    """What the plugin needs of the API server (the seam tests and the simulation replace)."""

    def get_claim(self, namespace: str, name: str) -> dict[str, Any] | None: ...

    def list_claims(self) -> list[dict[str, Any]]: ...

    def node_event(self, node_name: str, reason: str, message: str, warning: bool = True) -> None: ...


class KubeClaimReader:
    """``ClaimReader`` over the official client."""

    def __init__(self, api_client: k8s.ApiClient, timeout_s: float = 10.0) -> None:
        self._resource = k8s.ResourceV1Api(api_client)
        self._core = k8s.CoreV1Api(api_client)
        self._timeout_s = timeout_s
        # No jitter: one plugin per node, and the deadline (not a count) bounds how long prepare waits.
        self._backoff = Backoff(attempts=None, deadline_seconds=timeout_s, jitter=False)

    def get_claim(self, namespace: str, name: str) -> dict[str, Any] | None:
        with _tracer.start_as_current_span("api.get_resource_claim") as span:
            span.set_attribute("k8s.namespace.name", namespace)
            span.set_attribute("xpushare.claim.name", name)

            what = f"get ResourceClaim {namespace}/{name}"

            def read() -> dict[str, Any] | None:
                try:
                    response = typed_call(
                        what,
                        self._resource.read_namespaced_resource_claim,
                        name,
                        namespace,
                        _preload_content=False,
                        _request_timeout=self._timeout_s,
                    )
                except ApiError as err:
                    if err.status == 404:
                        return None
                    raise
                decoded: dict[str, Any] = json.loads(cast(Any, response).data)
                return decoded

            return with_retries(read, what, self._backoff)

    def list_claims(self) -> list[dict[str, Any]]:
        with _tracer.start_as_current_span("api.list_resource_claims"):

            def read() -> list[dict[str, Any]]:
                response = typed_call(
                    "list ResourceClaims",
                    self._resource.list_resource_claim_for_all_namespaces,
                    _preload_content=False,
                    _request_timeout=self._timeout_s,
                )
                items: list[dict[str, Any]] = json.loads(cast(Any, response).data).get("items") or []
                return items

            return with_retries(read, "list ResourceClaims", self._backoff)

    def node_event(self, node_name: str, reason: str, message: str, warning: bool = True) -> None:
        """Post an event on the Node; failures are logged, never raised (events are best effort)."""
        now = datetime.datetime.now(datetime.UTC)
        body = {
            "metadata": {"generateName": f"{node_name}.xpushare-"},
            "involvedObject": {"kind": "Node", "name": node_name, "apiVersion": "v1"},
            "reason": reason,
            "message": message[:1024],
            "type": "Warning" if warning else "Normal",
            "source": {"component": "xpushare-kubelet-plugin", "host": node_name},
            "firstTimestamp": now.isoformat(),
            "lastTimestamp": now.isoformat(),
            "count": 1,
        }
        what = f"post event {reason} on node {node_name}"
        try:
            with_retries(
                lambda: typed_call(
                    what,
                    self._core.create_namespaced_event,
                    "default",
                    cast(Any, body),
                    _request_timeout=self._timeout_s,
                ),
                what,
                self._backoff,
            )
        except ApiError as err:
            log.warning("could not post node event", extra={"reason": reason, "error": str(err)})
