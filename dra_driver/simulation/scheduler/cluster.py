"""The scheduler stand-in's only I/O: typed calls of the official ``kubernetes`` client, as dicts.

Objects are read with the typed APIs (``CoreV1Api``, ``ResourceV1Api``) and turned into plain dicts in
the API's Obj shape (``sanitize_for_serialization``), which is what the allocator takes. Writes send
dict bodies. Failures are ``dra_driver.core.kube.ApiError``s with the verb and object named; 409 conflicts
are ``ConflictError``s, which ``retry_conflicts`` retries with a short exponential backoff.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Container
from typing import Any, TypeVar

from kubernetes import client

from dra_driver.core.kube import MERGE_PATCH, ApiError, Backoff, conflicts_only, typed_call, with_retries
from dra_driver.core.kubetypes import Obj

__all__ = ["Cluster", "retry_conflicts"]

_log = logging.getLogger(__name__)
T = TypeVar("T")
# Conflicts clear as soon as the writer re-reads, so the waits stay short and need no jitter.
_CONFLICT_BACKOFF = Backoff(attempts=5, base_seconds=0.02, cap_seconds=1.0, jitter=False)


def retry_conflicts(action: Callable[[], T], what: str) -> T:
    """Run ``action`` (which must re-read what it writes) until it stops hitting 409 conflicts."""
    return with_retries(action, what, _CONFLICT_BACKOFF, retry_on=conflicts_only)


class Cluster:
    """Thin dict-in, dict-out wrapper over the typed client calls the stand-in needs."""

    def __init__(self, api_client: client.ApiClient) -> None:
        self._client = api_client
        self.core = client.CoreV1Api(api_client)
        self.resource = client.ResourceV1Api(api_client)

    def _json(self, obj: Any) -> Any:
        return self._client.sanitize_for_serialization(obj)  # type: ignore[no-untyped-call]

    def list_items(self, what: str, fn: Callable[..., Any], **kwargs: Any) -> list[Obj]:
        answer = typed_call(f"list {what}", fn, **kwargs)
        return [self._json(item) for item in answer.items]

    def pods(self) -> list[Obj]:
        return self.list_items("pods", self.core.list_pod_for_all_namespaces)

    def nodes(self) -> list[Obj]:
        return self.list_items("nodes", self.core.list_node)

    def slices(self) -> list[Obj]:
        return self.list_items("resourceslices", self.resource.list_resource_slice)

    def device_classes(self) -> list[Obj]:
        return self.list_items("deviceclasses", self.resource.list_device_class)

    def claims(self) -> list[Obj]:
        return self.list_items("resourceclaims", self.resource.list_resource_claim_for_all_namespaces)

    def claim(self, namespace: str, name: str) -> Obj | None:
        return self._read("resourceclaim", self.resource.read_namespaced_resource_claim, namespace, name)

    def template(self, namespace: str, name: str) -> Obj | None:
        return self._read(
            "resourceclaimtemplate", self.resource.read_namespaced_resource_claim_template, namespace, name
        )

    def _read(self, kind: str, fn: Callable[..., Any], namespace: str, name: str) -> Obj | None:
        """One namespaced object, or ``None`` when it does not exist."""
        try:
            got = typed_call(f"read {kind} {namespace}/{name}", fn, name, namespace)
        except ApiError as err:
            if err.status == 404:
                return None
            raise
        return self._json(got)  # type: ignore[no-any-return]

    def create_claim(self, namespace: str, body: Obj) -> Obj:
        name = body["metadata"]["name"]
        created = typed_call(
            f"create resourceclaim {namespace}/{name}",
            self.resource.create_namespaced_resource_claim,
            namespace,
            body,
        )
        return self._json(created)  # type: ignore[no-any-return]

    def replace_claim_status(self, claim: Obj) -> Obj:
        """Write the claim's status through its status subresource (resourceVersion-checked).

        A server without the subresource (404 on ``/status``) stores status with the object itself, so
        the whole claim is replaced instead; a deleted claim still fails with 404 there.
        """
        meta = claim["metadata"]
        what = f"update resourceclaim {meta['namespace']}/{meta['name']} status"
        args = (meta["name"], meta["namespace"], claim)
        replaced = _unless_missing(
            {404},
            lambda: typed_call(what, self.resource.replace_namespaced_resource_claim_status, *args),
            lambda: typed_call(what, self.resource.replace_namespaced_resource_claim, *args),
        )
        return self._json(replaced)  # type: ignore[no-any-return]

    def patch_pod_status(self, namespace: str, name: str, patch: Obj) -> None:
        """Obj merge patch: lists in ``patch`` replace the pod's lists whole, on any server."""
        typed_call(
            f"patch pod {namespace}/{name} status",
            self.core.patch_namespaced_pod_status,
            name,
            namespace,
            patch,
            _content_type=MERGE_PATCH,
        )

    def bind(self, pod: Obj, node: str) -> None:
        """Bind through pods/binding as kube-scheduler does; patch spec.nodeName where that is missing."""
        meta = pod["metadata"]
        binding = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": meta["name"], "namespace": meta["namespace"], "uid": meta.get("uid")},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        }
        what = f"bind pod {meta['namespace']}/{meta['name']} to {node}"
        name, namespace = meta["name"], meta["namespace"]

        def create_binding() -> None:
            # The client cannot deserialize the Status that the binding answers with; skip decoding.
            response = typed_call(what, self.core.create_namespaced_pod_binding, name, namespace, binding,
                                  _preload_content=False)
            getattr(response, "read", lambda: b"")()  # drain it so the connection goes back to the pool

        def patch_node_name() -> None:
            _log.debug("no pods/binding subresource, patching spec.nodeName", extra={"pod": name})
            typed_call(what, self.core.patch_namespaced_pod, name, namespace, {"spec": {"nodeName": node}},
                       _content_type=MERGE_PATCH)

        _unless_missing({404, 405}, create_binding, patch_node_name)

    def create_event(self, namespace: str, body: Obj) -> None:
        typed_call(f"create event in {namespace}", self.core.create_namespaced_event, namespace, body)


def _unless_missing(missing: Container[int], call: Callable[[], T], fallback: Callable[[], T]) -> T:
    """``call``, or ``fallback`` where the server lacks what ``call`` uses (answers a ``missing`` status)."""
    try:
        return call()
    except ApiError as err:
        if err.status not in missing:
            raise
    return fallback()
