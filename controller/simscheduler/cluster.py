"""The scheduler stand-in's only I/O: typed calls of the official ``kubernetes`` client, as dicts.

Objects are read with the typed APIs (``CoreV1Api``, ``ResourceV1Api``) and turned into plain dicts in
the API's JSON shape (``sanitize_for_serialization``), which is what the allocator takes. Writes send
dict bodies. Conflicts (409) are retried with a short exponential backoff by ``retry_conflicts``; other
API errors propagate as ``ClusterError`` with the verb and object named.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from dra_driver.errors import XPUShareError

__all__ = ["Cluster", "ClusterError", "ConflictError", "retry_conflicts"]

_log = logging.getLogger(__name__)
# The generated client sends a dict body as a JSON patch (a list of operations) unless told otherwise.
_MERGE_PATCH = "application/merge-patch+json"
T = TypeVar("T")
JSON = dict[str, Any]


class ClusterError(XPUShareError):
    """An API call failed for a reason other than a conflict."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class ConflictError(ClusterError):
    """The object changed under us (409) more often than the retry budget allows."""


def retry_conflicts(action: Callable[[], T], *, attempts: int = 5, base_delay: float = 0.02) -> T:
    """Run ``action`` (which must re-read what it writes) until it stops hitting 409 conflicts."""
    for attempt in range(attempts):
        try:
            return action()
        except ConflictError:
            if attempt == attempts - 1:
                raise
            time.sleep(base_delay * 2**attempt)
    raise AssertionError("unreachable")


class Cluster:
    """Thin dict-in, dict-out wrapper over the typed client calls the stand-in needs."""

    def __init__(self, api_client: client.ApiClient) -> None:
        self._client = api_client
        self.core = client.CoreV1Api(api_client)
        self.resource = client.ResourceV1Api(api_client)

    def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ApiException as err:
            error = ConflictError if err.status == 409 else ClusterError
            raise error(f"{what}: {err.status} {err.reason}: {_message(err)}", err.status) from err

    def _json(self, obj: Any) -> Any:
        return self._client.sanitize_for_serialization(obj)  # type: ignore[no-untyped-call]

    def list_items(self, what: str, fn: Callable[..., Any], **kwargs: Any) -> list[JSON]:
        answer = self._call(f"list {what}", fn, **kwargs)
        return [self._json(item) for item in answer.items]

    def pods(self) -> list[JSON]:
        return self.list_items("pods", self.core.list_pod_for_all_namespaces)

    def nodes(self) -> list[JSON]:
        return self.list_items("nodes", self.core.list_node)

    def slices(self) -> list[JSON]:
        return self.list_items("resourceslices", self.resource.list_resource_slice)

    def device_classes(self) -> list[JSON]:
        return self.list_items("deviceclasses", self.resource.list_device_class)

    def claims(self) -> list[JSON]:
        return self.list_items("resourceclaims", self.resource.list_resource_claim_for_all_namespaces)

    def claim(self, namespace: str, name: str) -> JSON | None:
        try:
            got = self._call(
                f"read resourceclaim {namespace}/{name}",
                self.resource.read_namespaced_resource_claim,
                name,
                namespace,
            )
        except ClusterError as err:
            if err.status == 404:
                return None
            raise
        return self._json(got)  # type: ignore[no-any-return]

    def template(self, namespace: str, name: str) -> JSON | None:
        try:
            got = self._call(
                f"read resourceclaimtemplate {namespace}/{name}",
                self.resource.read_namespaced_resource_claim_template,
                name,
                namespace,
            )
        except ClusterError as err:
            if err.status == 404:
                return None
            raise
        return self._json(got)  # type: ignore[no-any-return]

    def create_claim(self, namespace: str, body: JSON) -> JSON:
        name = body["metadata"]["name"]
        created = self._call(
            f"create resourceclaim {namespace}/{name}",
            self.resource.create_namespaced_resource_claim,
            namespace,
            body,
        )
        return self._json(created)  # type: ignore[no-any-return]

    def replace_claim_status(self, claim: JSON) -> JSON:
        """Write the claim's status through its status subresource (resourceVersion-checked).

        A server without the subresource (404 on ``/status``) stores status with the object itself, so
        the whole claim is replaced instead; a deleted claim still fails with 404 there.
        """
        meta = claim["metadata"]
        what = f"update resourceclaim {meta['namespace']}/{meta['name']} status"
        try:
            replaced = self._call(
                what,
                self.resource.replace_namespaced_resource_claim_status,
                meta["name"],
                meta["namespace"],
                claim,
            )
        except ClusterError as err:
            if err.status != 404:
                raise
            replaced = self._call(
                what, self.resource.replace_namespaced_resource_claim, meta["name"], meta["namespace"], claim
            )
        return self._json(replaced)  # type: ignore[no-any-return]

    def patch_pod_status(self, namespace: str, name: str, patch: JSON) -> None:
        """JSON merge patch: lists in ``patch`` replace the pod's lists whole, on any server."""
        self._call(
            f"patch pod {namespace}/{name} status",
            self.core.patch_namespaced_pod_status,
            name,
            namespace,
            patch,
            _content_type=_MERGE_PATCH,
        )

    def bind(self, pod: JSON, node: str) -> None:
        """Bind through pods/binding as kube-scheduler does; patch spec.nodeName where that is missing."""
        meta = pod["metadata"]
        binding = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": meta["name"], "namespace": meta["namespace"], "uid": meta.get("uid")},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        }
        what = f"bind pod {meta['namespace']}/{meta['name']} to {node}"
        try:
            # The client cannot deserialize the Status that the binding answers with; skip decoding.
            response = self._call(
                what,
                self.core.create_namespaced_pod_binding,
                meta["name"],
                meta["namespace"],
                binding,
                _preload_content=False,
            )
            getattr(response, "read", lambda: b"")()  # drain it so the connection goes back to the pool
            return
        except ClusterError as err:
            if err.status not in {404, 405}:
                raise
        _log.debug("no pods/binding subresource, patching spec.nodeName", extra={"pod": meta["name"]})
        self._call(
            what,
            self.core.patch_namespaced_pod,
            meta["name"],
            meta["namespace"],
            {"spec": {"nodeName": node}},
            _content_type=_MERGE_PATCH,
        )

    def create_event(self, namespace: str, body: JSON) -> None:
        self._call(f"create event in {namespace}", self.core.create_namespaced_event, namespace, body)


def _message(err: ApiException) -> str:
    body = err.body
    if isinstance(body, bytes):
        body = body.decode(errors="replace")
    return str(body or "")[:300]
