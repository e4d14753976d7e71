"""The node plugin's only door to the API server: read, list and watch claims, post events.

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
from collections.abc import Callable, Iterator
from typing import Any, Protocol, cast

import urllib3
from kubernetes import client as k8s
from kubernetes.watch.watch import iter_resp_lines

from dra_driver.core.kube import ApiError, Backoff, typed_call, with_retries
from dra_driver.core.telemetry import tracer

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

    def watch_claims(
        self, resource_version: str, timeout_s: int, on_open: Callable[[Any], None] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Events of every ResourceClaim after ``resource_version`` ("" starts with the current claims
        as ADDED), with bookmarks, as decoded JSON; ends after ``timeout_s`` (server side).

        ``on_open`` receives the response, so another thread can end the stream early (``shutdown``).
        """
        response = typed_call(
            "watch ResourceClaims",
            self._resource.list_resource_claim_for_all_namespaces,
            watch=True,
            resource_version=resource_version or None,
            allow_watch_bookmarks=True,
            timeout_seconds=timeout_s,
            _preload_content=False,
            _request_timeout=(self._timeout_s, timeout_s + self._timeout_s),
        )
        if on_open is not None:
            on_open(response)
        try:
            for line in iter_resp_lines(response):  # type: ignore[no-untyped-call]
                if line:
                    yield json.loads(line)
        except (urllib3.exceptions.HTTPError, OSError, ValueError) as err:
            raise ApiError(f"watch ResourceClaims: stream broken: {err}") from err
        finally:
            cast(Any, response).release_conn()

    def node_event(self, node_name: str, reason: str, message: str, warning: bool = True) -> None:
        """Post an event on the Node; failures are logged, never raised (events are best effort)."""
        involved = {"kind": "Node", "name": node_name, "apiVersion": "v1"}
        self._post_event("default", f"{node_name}.xpushare-", involved,
                         reason=reason, message=message, warning=warning, host=node_name)

    def claim_event(self, claim: dict[str, Any], reason: str, message: str, warning: bool = True) -> None:
        """Post an event on a ResourceClaim (``kubectl describe resourceclaim`` shows it); best effort."""
        meta = claim.get("metadata") or {}
        namespace, name = str(meta.get("namespace", "default")), str(meta.get("name", ""))
        involved = {
            "kind": "ResourceClaim",
            "apiVersion": "resource.k8s.io/v1",
            "namespace": namespace,
            "name": name,
            "uid": str(meta.get("uid", "")),
        }
        self._post_event(namespace, f"{name}.xpushare-", involved,
                         reason=reason, message=message, warning=warning)

    def _post_event(
        self,
        namespace: str,
        prefix: str,
        involved: dict[str, str],
        *,
        reason: str,
        message: str,
        warning: bool,
        host: str = "",
    ) -> None:
        now = datetime.datetime.now(datetime.UTC)
        body = {
            "metadata": {"generateName": prefix},
            "involvedObject": involved,
            "reason": reason,
            "message": message[:1024],
            "type": "Warning" if warning else "Normal",
            "source": {"component": "xpushare-kubelet-plugin", **({"host": host} if host else {})},
            "firstTimestamp": now.isoformat(),
            "lastTimestamp": now.isoformat(),
            "count": 1,
        }
        what = f"post event {reason} on {involved['kind']} {involved['name']}"
        try:
            with_retries(
                lambda: typed_call(
                    what,
                    self._core.create_namespaced_event,
                    namespace,
                    cast(Any, body),
                    _request_timeout=self._timeout_s,
                ),
                what,
                self._backoff,
            )
        except ApiError as err:
            log.warning("could not post event", extra={"reason": reason, "error": str(err)})
