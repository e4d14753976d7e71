"""The node plugin's only door to the API server: read claims, list claims, post events.

Claims are read through the official client's typed API (``ResourceV1Api``) but decoded as plain JSON
(``_preload_content=False``): prepare only needs a few fields, and skipping the client's model
deserialization keeps a claim read well under a millisecond of CPU. Server errors, throttling and
connection failures are retried with exponential backoff inside a deadline; a 404 is an answer, not an
error (the claim is gone).
"""

from __future__ import annotations

import datetime
import json
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar, cast

import urllib3.exceptions
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from dra_driver.errors import XPUShareError
from dra_driver.telemetry import tracer

log = logging.getLogger(__name__)
_tracer = tracer(__name__)
T = TypeVar("T")
RETRIED_STATUS = frozenset({409, 429, 500, 502, 503, 504})


class ApiError(XPUShareError):
    """The API server could not be reached or refused a request after the retries."""


class ClaimReader(Protocol):
    """What the plugin needs of the API server (the seam tests and the simulation replace)."""

    def get_claim(self, namespace: str, name: str) -> dict[str, Any] | None: ...

    def list_claims(self) -> list[dict[str, Any]]: ...

    def node_event(self, node_name: str, reason: str, message: str, warning: bool = True) -> None: ...


def with_retries(
    action: Callable[[], T], what: str, deadline_s: float = 10.0, first_delay_s: float = 0.05
) -> T:
    """Run ``action``, retrying transient failures with doubling delays until ``deadline_s`` has passed."""
    delay = first_delay_s
    end = time.monotonic() + deadline_s
    while True:
        try:
            return action()
        except ApiException as err:
            if err.status not in RETRIED_STATUS or time.monotonic() + delay > end:
                raise ApiError(f"{what}: HTTP {err.status} {err.reason}") from err
            log.debug("retrying API call", extra={"what": what, "status": err.status})
        except (urllib3.exceptions.HTTPError, OSError) as err:
            if time.monotonic() + delay > end:
                raise ApiError(f"{what}: {err}") from err
            log.debug("retrying API call", extra={"what": what, "error": str(err)})
        time.sleep(delay)
        delay = min(delay * 2, 2.0)


class KubeClaimReader:
    """``ClaimReader`` over the official client."""

    def __init__(self, api_client: k8s.ApiClient, timeout_s: float = 10.0) -> None:
        self._resource = k8s.ResourceV1Api(api_client)
        self._core = k8s.CoreV1Api(api_client)
        self._timeout_s = timeout_s

    def get_claim(self, namespace: str, name: str) -> dict[str, Any] | None:
        with _tracer.start_as_current_span("api.get_resource_claim") as span:
            span.set_attribute("k8s.namespace.name", namespace)
            span.set_attribute("xpushare.claim.name", name)

            def read() -> dict[str, Any] | None:
                try:
                    response = self._resource.read_namespaced_resource_claim(
                        name, namespace, _preload_content=False, _request_timeout=self._timeout_s
                    )
                except ApiException as err:
                    if err.status == 404:
                        return None
                    raise
                decoded: dict[str, Any] = json.loads(cast(Any, response).data)
                return decoded

            return with_retries(read, f"get ResourceClaim {namespace}/{name}", self._timeout_s)

    def list_claims(self) -> list[dict[str, Any]]:
        with _tracer.start_as_current_span("api.list_resource_claims"):

            def read() -> list[dict[str, Any]]:
                response = self._resource.list_resource_claim_for_all_namespaces(
                    _preload_content=False, _request_timeout=self._timeout_s
                )
                items: list[dict[str, Any]] = json.loads(cast(Any, response).data).get("items") or []
                return items

            return with_retries(read, "list ResourceClaims", self._timeout_s)

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
        try:
            with_retries(
                lambda: self._core.create_namespaced_event(
                    "default", cast(Any, body), _request_timeout=self._timeout_s
                ),
                f"post event {reason} on node {node_name}",
                self._timeout_s,
            )
        except ApiError as err:
            log.warning("could not post node event", extra={"reason": reason, "error": str(err)})
